// The API suite against the Node host, plus Node-only checks: exact greedy parity with PyTorch,
// disconnects, overload, API keys.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { request } from "undici";
import { apiCases, MODEL } from "./api-cases.js";
import { parity } from "./helpers/fixture.js";
import { startFixtureServer, type RunningServer } from "./helpers/server.js";
import { Tokenizer } from "../src/tokenizer/tokenizer.js";
import { loadTokenizer } from "../scripts/tokenizer/files.js";
import { FIXTURE_DIR } from "./helpers/fixture.js";

describe("Node host", () => {
  let server: RunningServer;
  beforeAll(async () => (server = await startFixtureServer()));
  afterAll(() => server.close());
  apiCases(() => server.baseURL);
});

describe("greedy output equals PyTorch's (fp32 graph)", () => {
  let server: RunningServer;
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    server = await startFixtureServer({ ONNX_FILE: "onnx/model.onnx" });
    tokenizer = loadTokenizer(FIXTURE_DIR);
  });
  afterAll(() => server.close());

  it("through /v1/completions with token-id prompts", async () => {
    const client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: "x", maxRetries: 0 });
    for (const g of parity.greedy) {
      const r = await client.completions.create({ model: MODEL, prompt: g.prompt, max_tokens: g.tokens.length, temperature: 0 });
      const eos = g.tokens.indexOf(tokenizer.eosId!);
      expect(r.choices[0].text).toBe(tokenizer.decode(eos >= 0 ? g.tokens.slice(0, eos) : g.tokens));
    }
  });
});

describe("disconnects and overload", () => {
  let server: RunningServer;
  beforeAll(async () => (server = await startFixtureServer({ MAX_BATCH: "4", MAX_QUEUE: "8" })));
  afterAll(() => server.close());

  const engineGauges = async () => {
    const text = await (await fetch(`${server.baseURL}/metrics`)).text();
    const read = (name: string) => Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1]);
    return { queued: read("tinylm_queue_depth"), running: read("tinylm_running_sequences") };
  };

  it("50 streams aborted mid-way leave the server answering with an empty queue", async () => {
    const aborted = Array.from({ length: 50 }, async (_, i) => {
      const ac = new AbortController();
      try {
        const res = await fetch(`${server.baseURL}/v1/completions`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ model: MODEL, prompt: `Story ${i}`, max_tokens: 200, stream: true }),
          signal: ac.signal,
        });
        if (res.status !== 200) return res.status;
        const reader = res.body!.getReader();
        await reader.read(); // at least one event, then hang up
        ac.abort();
        return 200;
      } catch {
        return 0;
      }
    });
    const statuses = await Promise.all(aborted);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    // Cancellation happens at the next engine step; allow a loaded CI machine time to get there.
    for (let i = 0; i < 300; i++) {
      const g = await engineGauges();
      if (g.queued === 0 && g.running === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await engineGauges()).toEqual({ queued: 0, running: 0 });
    const client = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: "x", maxRetries: 0 });
    const r = await client.completions.create({ model: MODEL, prompt: "Still there?", max_tokens: 4 });
    expect(r.choices[0].text.length).toBeGreaterThan(0);
  });

  it("more requests than the queue holds: the excess get 429 + Retry-After, the rest complete", async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        request(`${server.baseURL}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: MODEL, prompt: `Tale ${i}`, max_tokens: 16 }),
        }).then(async (r) => ({ status: r.statusCode, retry: r.headers["retry-after"], body: (await r.body.json()) as { choices?: { text: string }[]; error?: { type: string } } })),
      ),
    );
    const ok = results.filter((r) => r.status === 200);
    const busy = results.filter((r) => r.status === 429);
    expect(ok.length + busy.length).toBe(30);
    expect(busy.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThanOrEqual(8);
    expect(busy.every((r) => r.retry === "1" && r.body.error?.type === "rate_limit_error")).toBe(true);
    expect(ok.every((r) => typeof r.body.choices?.[0].text === "string")).toBe(true);
  });
});

describe("API key", () => {
  let server: RunningServer;
  beforeAll(async () => (server = await startFixtureServer({ API_KEY: "sekrit-key" })));
  afterAll(() => server.close());

  it("rejects a missing or wrong key with 401 and accepts the right one", async () => {
    const without = await fetch(`${server.baseURL}/v1/models`);
    expect(without.status).toBe(401);
    expect(((await without.json()) as { error: { type: string } }).error.type).toBe("authentication_error");
    const wrong = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: "sekrit-kez", maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toMatchObject({ status: 401 });
    const right = new OpenAI({ baseURL: `${server.baseURL}/v1`, apiKey: "sekrit-key", maxRetries: 0 });
    expect((await right.models.list()).data[0].id).toBe(MODEL);
  });
});
