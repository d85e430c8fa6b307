// Regression tests for the review's findings (issue 27), each through the HTTP API of the Node host
// with the fixture model, loopback only.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { settingsFrom } from "../src/hosts/config.js";
import { MODEL } from "./api-cases.js";
import { foreignFixture } from "./helpers/interop-fixtures.js";
import { startFixtureServer, type RunningServer } from "./helpers/server.js";

let server: RunningServer;
beforeAll(async () => (server = await startFixtureServer()), 60_000);
afterAll(() => server.close());

const post = (path: string, body: unknown, base = server.baseURL) =>
  fetch(`${base}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

/** The data of every SSE event but [DONE]. */
async function events(res: Response): Promise<Record<string, unknown>[]> {
  const text = await res.text();
  return text.split("\n\n").map((e) => e.replace(/^data: /, "").trim()).filter((d) => d && d !== "[DONE]").map((d) => JSON.parse(d));
}

type Logprobs = { tokens: string[]; token_logprobs: (number | null)[]; text_offset: number[] };

describe("echo + logprobs + max_tokens 0", () => {
  it("returns every prompt token's log-probability and generates nothing", async () => {
    const res = await post("/v1/completions", { model: MODEL, prompt: "Once upon a time there was a cat", max_tokens: 0, echo: true, logprobs: 0 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { text: string; logprobs: Logprobs }[]; usage: { completion_tokens: number } };
    const lps = body.choices[0].logprobs.token_logprobs;
    expect(lps[0]).toBeNull();
    expect(lps.length).toBeGreaterThan(3);
    expect(lps.slice(1).every((lp) => typeof lp === "number" && lp <= 0)).toBe(true);
    expect(body.choices[0].text).toBe("Once upon a time there was a cat");
    expect(body.usage.completion_tokens).toBe(0);
  });
});

describe("a stop string inside a forced tool call", () => {
  const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { enum: ["Oslo", "Rome"] } }, required: ["city"], additionalProperties: false } } }];
  const request = { model: MODEL, messages: [{ role: "user", content: "Weather?" }], tools, tool_choice: "required", max_tokens: 80, temperature: 0, stop: ['"', "city", ":"] };

  it("does not cut the call: a whole tool call, streamed or not", async () => {
    const res = await post("/v1/chat/completions", request);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { finish_reason: string; message: { tool_calls: { function: { name: string; arguments: string } }[] } }[] };
    expect(body.choices[0].finish_reason).toBe("tool_calls");
    expect(JSON.parse(body.choices[0].message.tool_calls[0].function.arguments).city).toMatch(/Oslo|Rome/);
    const streamed = await events(await post("/v1/chat/completions", { ...request, stream: true }));
    expect(streamed.some((e) => "error" in e)).toBe(false);
    expect(streamed.map((e) => (e as { choices: { finish_reason: string | null }[] }).choices[0]?.finish_reason).filter(Boolean)).toEqual(["tool_calls"]);
  });
});

describe("streaming logprobs.text_offset", () => {
  it("runs on across chunks, as in the response that is not streamed", async () => {
    const request = { model: MODEL, prompt: "The dog", max_tokens: 12, temperature: 0, logprobs: 1, echo: true };
    const whole = ((await (await post("/v1/completions", request)).json()) as { choices: { logprobs: Logprobs }[] }).choices[0].logprobs;
    const chunks = await events(await post("/v1/completions", { ...request, stream: true }));
    const offsets = chunks.flatMap((c) => (c as { choices: { logprobs: Logprobs | null }[] }).choices[0]?.logprobs?.text_offset ?? []);
    expect(offsets).toEqual(whole.text_offset);
    expect(new Set(offsets).size).toBe(offsets.length); // strictly increasing, never back to 0
  });
});

describe("log-probabilities do not change with the sampling filters", () => {
  it("greedy with and without top_p, top_k and temperature reports the same log-probability for the same token", async () => {
    const ask = async (extra: Record<string, unknown>) => {
      const body = (await (await post("/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: "Hello" }], max_tokens: 3, logprobs: true, top_logprobs: 2, temperature: 0, ...extra })).json()) as {
        choices: { logprobs: { content: { token: string; logprob: number; top_logprobs: { logprob: number }[] }[] } }[];
      };
      return body.choices[0].logprobs.content;
    };
    const plain = await ask({});
    for (const extra of [{ top_p: 0.99 }, { top_p: 0.3, top_k: 2 }, { min_p: 0.2 }]) {
      const other = await ask(extra);
      expect(other.map((t) => t.token)).toEqual(plain.map((t) => t.token));
      other.forEach((t, i) => {
        expect(t.logprob).toBeCloseTo(plain[i].logprob, 5);
        t.top_logprobs.forEach((a, j) => expect(a.logprob).toBeCloseTo(plain[i].top_logprobs[j].logprob, 5));
      });
    }
  });
});

describe("/tokenize add_special", () => {
  it("adds what the tokenizer's post-processor adds (Llama 2's <s>) only when asked", async () => {
    const foreign = await startFixtureServer({ MODEL_DIR: foreignFixture() });
    try {
      const tokens = async (add_special?: boolean) =>
        ((await (await post("/tokenize", { content: "Hello world", ...(add_special === undefined ? {} : { add_special }) }, foreign.baseURL)).json()) as { tokens: number[] }).tokens;
      const plain = await tokens();
      expect(await tokens(false)).toEqual(plain);
      expect(await tokens(true)).toEqual([1, ...plain]); // <s> is id 1 in Llama 2's vocabulary
    } finally {
      await foreign.close();
    }
  }, 120_000);
});

describe("MAX_BATCH and MAX_QUEUE", () => {
  it("0 is refused at start-up, naming the variable (it would hang every request or refuse them all)", () => {
    expect(() => settingsFrom({ MAX_BATCH: "0" })).toThrow(/MAX_BATCH must be an integer of at least 1/);
    expect(() => settingsFrom({ MAX_QUEUE: "0" })).toThrow(/MAX_QUEUE must be an integer of at least 1/);
    expect(settingsFrom({ MAX_BATCH: "1", MAX_QUEUE: "1" }).engine).toMatchObject({ maxBatch: 1, maxQueue: 1 });
  });
});
