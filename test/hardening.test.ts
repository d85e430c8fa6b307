// Regression tests for a hostile client (issue 21): each reproduces a finding of the review and
// fails without its fix. Fixture model, loopback only.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { request } from "undici";
import { Engine, QueueFullError, type GenerateRequest } from "../src/engine/engine.js";
import type { Decoder, LogitsWanted, StepInput } from "../src/engine/decoder.js";
import { DEFAULT_SAMPLING } from "../src/engine/sampler.js";
import { ModelHandle, publicReason, type LoadedModel } from "../src/model.js";
import { loadTokenizer } from "../scripts/tokenizer/files.js";
import { MODEL } from "./api-cases.js";
import { FIXTURE_DIR, simdDecoder } from "./helpers/fixture.js";
import { startFixtureServer, type RunningServer } from "./helpers/server.js";
import { freePort, spawnHost } from "./helpers/spawn.js";
import { DENO_RUN_ARGS } from "../src/hosts/config.js";

const ROOT = join(import.meta.dirname, "..");
const bin = (name: string) => join(ROOT, "node_modules/.bin", name);
const greedy = { ...DEFAULT_SAMPLING, temperature: 0 };
const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "Content-Type": "application/json", ...headers },
  body: JSON.stringify(body),
});
const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}) => fetch(`${base}${path}`, json(body, headers));

async function collect(gen: AsyncIterable<{ token: number }>): Promise<number[]> {
  const out: number[] = [];
  for await (const t of gen) out.push(t.token);
  return out;
}

/** A decoder that records each step: how many tokens each row feeds, which logits it wants. */
function recording(dec: Decoder) {
  const log: { sizes: number[]; wanted: LogitsWanted[] }[] = [];
  const wrapped: Decoder = {
    backend: dec.backend,
    shape: dec.shape,
    newCache: () => dec.newCache(),
    warmUp: () => dec.warmUp(),
    step: (inputs: StepInput[]) => {
      log.push({ sizes: inputs.map((i) => i.tokens.length), wanted: inputs.map((i) => i.logits ?? "last") });
      return dec.step(inputs as never);
    },
  };
  return { wrapped, log };
}

describe("1. a model that fails to load is a state, not a crash", () => {
  it("Node: /health answers 503 with a reason and no paths, again and again, and the process lives", async () => {
    const port = await freePort();
    const server = await spawnHost(bin("tsx"), ["src/hosts/node.ts"], { MODEL_DIR: FIXTURE_DIR, ONNX_FILE: "onnx/missing.onnx", PORT: String(port) }, port, 60_000, true);
    try {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${server.baseURL}/health`);
        expect(res.status).toBe(503);
        const body = (await res.json()) as { status: string; error: string | null };
        expect(["loading", "failed"]).toContain(body.status);
        if (body.error) {
          expect(body.error).toContain("onnx/missing.onnx");
          expect(body.error).not.toContain(ROOT);
        }
        await new Promise((r) => setTimeout(r, 300));
      }
      const models = await fetch(`${server.baseURL}/v1/models`);
      expect(models.status).toBe(503);
      expect(JSON.stringify(await models.json())).not.toContain(ROOT);
      expect(server.child!.exitCode).toBeNull();
    } finally {
      await server.close();
    }
  });

  it("Deno: the same", async () => {
    const port = await freePort();
    const server = await spawnHost(bin("deno"), DENO_RUN_ARGS,
      { MODEL_DIR: "test/fixtures/tiny-model", ONNX_FILE: "onnx/missing.onnx", PORT: String(port), DENO_NO_UPDATE_CHECK: "1" }, port, 60_000, true);
    try {
      for (let i = 0; i < 3; i++) expect((await fetch(`${server.baseURL}/health`)).status).toBe(503);
      expect(server.child!.exitCode).toBeNull();
    } finally {
      await server.close();
    }
  });

  it("a failed load is retried with backoff, not on every request", async () => {
    let calls = 0;
    const handle = new ModelHandle(async () => {
      calls++;
      if (calls < 3) throw new Error("/very/secret/place/model/config.json: not found");
      return { id: "ok" } as LoadedModel;
    }, 50);
    await expect(handle.get()).rejects.toThrow();
    await expect(handle.get()).rejects.toThrow(); // inside the backoff: no new attempt
    expect(calls).toBe(1);
    expect(publicReason(handle.error!)).toBe("config.json: not found");
    await new Promise((r) => setTimeout(r, 60));
    await expect(handle.get()).rejects.toThrow();
    expect(calls).toBe(2);
    await new Promise((r) => setTimeout(r, 120)); // backoff doubled
    expect((await handle.get()).id).toBe("ok");
  });
});

describe("2. bounded work before admission", () => {
  let server: RunningServer;
  beforeAll(async () => (server = await startFixtureServer({ API_KEY: "k" })));
  afterAll(() => server.close());
  const auth = { Authorization: "Bearer k" };

  it("an over-long prompt is refused from its length alone (context_length_exceeded), on both routes", async () => {
    const big = "a".repeat(990_000);
    const res = await post(server.baseURL, "/v1/completions", { model: MODEL, prompt: big, max_tokens: 1 }, auth);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; param: string; message: string } };
    expect(body.error).toMatchObject({ code: "context_length_exceeded", param: "prompt" });
    expect(body.error.message).toMatch(/at least \d+ tokens/); // the byte bound, not the tokenizer, said so
    const chat = await post(server.baseURL, "/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: " ".repeat(990_000) }] }, auth);
    expect(chat.status).toBe(400);
    expect(((await chat.json()) as { error: { param: string } }).error.param).toBe("messages");
  });

  it("/tokenize takes bounded input, and /tokenize, /detokenize and /metrics need the key", async () => {
    expect((await post(server.baseURL, "/tokenize", { content: "hi" })).status).toBe(401);
    expect((await post(server.baseURL, "/detokenize", { tokens: [1] })).status).toBe(401);
    expect((await fetch(`${server.baseURL}/metrics`)).status).toBe(401);
    expect((await fetch(`${server.baseURL}/metrics`, { headers: auth })).status).toBe(200);
    const res = await post(server.baseURL, "/tokenize", { content: " ".repeat(990_000) }, auth);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe("content");
  });

  it("encoding a slice at a time gives exactly the tokens of encoding at once", async () => {
    const tok = loadTokenizer(FIXTURE_DIR);
    const words = fc.array(fc.oneof(fc.constantFrom("the", "Cat", "naïve", "日本", "12345", "  ", "\n", "!?", "it's", "é"), fc.string({ maxLength: 6 })), { maxLength: 4000 });
    await fc.assert(fc.asyncProperty(words, async (parts) => {
      const text = parts.join(" ");
      expect(await tok.encodeAsync(text)).toEqual(tok.encode(text));
    }), { numRuns: 60 });
  });
});

describe("3. a long prompt cannot starve running streams", () => {
  it("every step carries the running stream's token beside the prompt chunks; prompt logits only when asked for", async () => {
    const { wrapped, log } = recording(await simdDecoder());
    const engine = new Engine(wrapped, { maxBatch: 8, maxQueue: 8, prefixCache: false });
    const victim = engine.generate({ prompt: [8187, 5], maxTokens: 60, sampling: greedy, stopTokens: new Set() });
    const it = victim[Symbol.asyncIterator]();
    await it.next(); // the victim is running
    const from = log.length;
    const hostile: GenerateRequest = { prompt: Array.from({ length: 200 }, (_, i) => 300 + i), maxTokens: 1, sampling: greedy, stopTokens: new Set(), promptLogprobs: true };
    const flood = Array.from({ length: 4 }, () => collect(engine.generate({ ...hostile })));
    let victimTokens = 1;
    while (!(await it.next()).done) victimTokens++;
    const victimSteps = log.length - from;
    await Promise.all(flood);
    expect(victimTokens).toBe(60);
    // One decoder call per step: the victim's decode row is in each of its 59 steps, prompt chunks beside it.
    expect(victimSteps).toBe(59);
    const steps = log.slice(from, from + victimSteps);
    expect(steps.every((s) => s.sizes[0] === 1 && s.wanted[0] === "last")).toBe(true);
    expect(steps.some((s) => s.sizes.length > 1)).toBe(true);
    // Prompt chunks with every position's logits stay within 64 tokens.
    for (const s of log) s.wanted.forEach((w, i) => w === "all" && expect(s.sizes[i]).toBeLessThanOrEqual(64));
    const chat = recording(await simdDecoder());
    const e2 = new Engine(chat.wrapped, { maxBatch: 8, maxQueue: 8, prefixCache: false });
    const other = e2.generate({ prompt: [8187, 9], maxTokens: 40, sampling: greedy, stopTokens: new Set() })[Symbol.asyncIterator]();
    await other.next(); // a running stream makes the prompt below go in small chunks
    await collect(e2.generate({ ...hostile, promptLogprobs: false }));
    while (!(await other.next()).done);
    // Without logprobs: no position's logits but the prompt's last (the chunks before it ask for none).
    const wanted = chat.log.flatMap((s) => s.wanted);
    expect(wanted).not.toContain("all");
    expect(wanted.filter((w) => w === "none").length).toBeGreaterThan(1);
  });

  it("prompt log-probabilities from chunks equal those of one pass", async () => {
    const dec = await simdDecoder();
    const prompt = Array.from({ length: 150 }, (_, i) => 300 + ((i * 37) % 4000));
    const chunked = new Engine(dec, { maxBatch: 2, maxQueue: 4, prefixCache: false });
    // A running stream makes the engine feed the prompt in small chunks.
    const other = chunked.generate({ prompt: [8187, 9], maxTokens: 40, sampling: greedy, stopTokens: new Set() });
    const oi = other[Symbol.asyncIterator]();
    await oi.next();
    const g = chunked.generate({ prompt, maxTokens: 1, sampling: greedy, stopTokens: new Set(), promptLogprobs: true });
    await collect(g);
    while (!(await oi.next()).done);
    const [all] = await dec.step([{ cache: dec.newCache(), tokens: prompt, logits: "all" }]);
    const V = dec.shape.vocabSize;
    const expected = prompt.map((t, i) => {
      if (i === 0) return null;
      const row = all.logits.subarray((i - 1) * V, i * V);
      let max = -Infinity;
      for (const l of row) max = Math.max(max, l);
      let z = 0;
      for (const l of row) z += Math.exp(l - max);
      return row[t] - max - Math.log(z);
    });
    expect(g.promptLogprobs.length).toBe(prompt.length);
    g.promptLogprobs.forEach((lp, i) => (i === 0 ? expect(lp).toBeNull() : expect(lp).toBeCloseTo(expected[i]!, 3)));
  });
});

describe("4. work nobody waits for stops, and the queue counts live requests", () => {
  it("cancelled waiting sequences do not count against MAX_QUEUE; n choices count as one request", async () => {
    const engine = new Engine(await simdDecoder(), { maxBatch: 1, maxQueue: 2, prefixCache: false });
    const long = { prompt: [8187, 5], maxTokens: 200, sampling: greedy, stopTokens: new Set<number>() };
    const running = engine.generate(long);
    const first = running[Symbol.asyncIterator]();
    await first.next(); // running: it holds the batch's one place
    const aborts = [new AbortController(), new AbortController()];
    aborts.forEach((ac) => engine.generate({ ...long, signal: ac.signal }));
    expect(() => engine.generate(long)).toThrow(QueueFullError);
    aborts.forEach((ac) => ac.abort());
    const four = engine.generateChoices(long, Array.from({ length: 4 }, () => ({ ...long, maxTokens: 2 }))); // one request, n = 4
    expect(engine.stats.queued).toBe(1);
    engine.stop();
    while (!(await first.next()).done);
    for (const g of four) await collect(g);
  });

  it("a non-streaming request whose client hangs up is cancelled", async () => {
    const server = await startFixtureServer({ MAX_BATCH: "8" });
    try {
      const gauges = async () => {
        const text = await (await fetch(`${server.baseURL}/metrics`)).text();
        return Number(/^tinylm_running_sequences (\d+)/m.exec(text)?.[1]);
      };
      const acs = Array.from({ length: 8 }, () => new AbortController());
      const pending = acs.map((ac, i) =>
        request(`${server.baseURL}/v1/completions`, { ...json({ model: MODEL, prompt: `Tale ${i}`, max_tokens: 240, temperature: 1, stop: [] }), signal: ac.signal }).catch(() => null),
      );
      await new Promise((r) => setTimeout(r, 30));
      acs.forEach((ac) => ac.abort());
      await Promise.all(pending);
      let running = await gauges();
      for (let i = 0; i < 100 && running > 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        running = await gauges();
      }
      expect(running).toBe(0);
      const text = await (await fetch(`${server.baseURL}/metrics`)).text();
      const generated = Number(/^tinylm_generated_tokens_total (\d+)/m.exec(text)?.[1]);
      expect(generated).toBeLessThan(8 * 240); // not run to the end
    } finally {
      await server.close();
    }
  });
});

describe("5. no prompt crosses between clients through the prefix cache", () => {
  it("the engine reuses a prefix only within one scope", async () => {
    const engine = new Engine(await simdDecoder(), { maxBatch: 2, maxQueue: 4, prefixCache: true });
    const prompt = [8187, 300, 301, 302, 303, 304, 305, 306];
    const run = (cacheScope: string, p = prompt) => collect(engine.generate({ prompt: p, maxTokens: 2, sampling: greedy, stopTokens: new Set(), cacheScope }));
    await run("alice");
    await run("mallory", [...prompt.slice(0, 5), 999]);
    expect(engine.stats.reusedPromptTokens).toBe(0);
    await run("alice");
    await run("alice", [...prompt.slice(0, 5), 999]);
    expect(engine.stats.reusedPromptTokens).toBeGreaterThan(0);
  });

  it("without an API key and with CORS open, nothing is reused at all", async () => {
    const server = await startFixtureServer();
    try {
      for (let i = 0; i < 2; i++) await post(server.baseURL, "/v1/completions", { model: MODEL, prompt: "The same long prompt, word for word, twice", max_tokens: 2 });
      const text = await (await fetch(`${server.baseURL}/metrics`)).text();
      expect(Number(/^tinylm_prompt_tokens_reused_total (\d+)/m.exec(text)?.[1])).toBe(0);
    } finally {
      await server.close();
    }
  });
});

describe("8. the smaller findings", () => {
  let server: RunningServer;
  beforeAll(async () => (server = await startFixtureServer({ API_KEY: "k" })));
  afterAll(() => server.close());
  const auth = { Authorization: "Bearer k" };

  it("an empty prompt is a 400 naming prompt", async () => {
    for (const prompt of ["", [], [[]]]) {
      const res = await post(server.baseURL, "/v1/completions", { model: MODEL, prompt, max_tokens: 2 }, auth);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { param: string } }).error.param).toMatch(/^prompt/);
    }
  });

  it("a vanishing temperature is greedy: finite log-probabilities, never null", async () => {
    const res = await post(server.baseURL, "/v1/completions", { model: MODEL, prompt: "Once", max_tokens: 6, temperature: 1e-40, logprobs: 2 }, auth);
    const body = (await res.json()) as { choices: { logprobs: { token_logprobs: (number | null)[] } }[] };
    expect(body.choices[0].logprobs.token_logprobs.every((l) => typeof l === "number" && Number.isFinite(l))).toBe(true);
    const greedyRes = await post(server.baseURL, "/v1/completions", { model: MODEL, prompt: "Once", max_tokens: 6, temperature: 0 }, auth);
    expect(((await greedyRes.json()) as { choices: { text: string }[] }).choices[0].text).toBe(((body as unknown) as { choices: { text: string }[] }).choices[0].text);
  });

  it("JSON routes refuse other content types (no preflight-free cross-origin generations)", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", ""]) {
      const res = await fetch(`${server.baseURL}/v1/completions`, { method: "POST", headers: { ...auth, "Content-Type": type }, body: JSON.stringify({ model: MODEL, prompt: "x" }) });
      expect(res.status).toBe(415);
      expect(((await res.json()) as { error: { type: string } }).error.type).toBe("invalid_request_error");
    }
  });

  it("the Bearer scheme is case-insensitive", async () => {
    expect((await fetch(`${server.baseURL}/v1/models`, { headers: { Authorization: "bearer k" } })).status).toBe(200);
    expect((await fetch(`${server.baseURL}/v1/models`, { headers: { Authorization: "BEARER  k" } })).status).toBe(200);
    expect((await fetch(`${server.baseURL}/v1/models`, { headers: { Authorization: "Basic k" } })).status).toBe(401);
  });
});

describe("7. graceful shutdown", () => {
  const streamThenSignal = async (server: RunningServer, signal: NodeJS.Signals) => {
    const res = await post(server.baseURL, "/v1/completions", { model: "tinylm-edge-14m", prompt: "Once upon a time", max_tokens: 480, stream: true, temperature: 1, stop: [] });
    const reader = res.body!.getReader();
    let text = "";
    const count = () => (text.match(/"finish_reason":null/g) ?? []).length;
    while (count() < 20) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(count()).toBeGreaterThanOrEqual(20); // a stream is not cut once its response has started
    process.kill(server.child!.pid!, signal);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const exit = await new Promise<number | null>((r) => (server.child!.exitCode !== null ? r(server.child!.exitCode) : server.child!.once("exit", (code) => r(code))));
    expect(server.log!()).toContain("shutting down");
    expect(count()).toBeLessThan(480); // ended by the shutdown, not by max_tokens
    return { text, exit };
  };

  it("Node: SIGTERM lets a running stream end with a finish_reason and [DONE], then exits 0", async () => {
    const port = await freePort();
    const server = await spawnHost("node", ["--import", "tsx", "src/hosts/node.ts"], { MODEL_DIR: "model", PORT: String(port), SHUTDOWN_GRACE_MS: "150" }, port, 90_000);
    try {
      const { text, exit } = await streamThenSignal(server, "SIGTERM");
      expect(text).toMatch(/"finish_reason":"(length|stop)"/);
      expect(text.trim().endsWith("data: [DONE]")).toBe(true);
      expect(exit).toBe(0);
    } finally {
      await server.close();
    }
  });

  it("npm start passes SIGTERM on: the server drains and no process is left serving", async () => {
    const port = await freePort();
    const server = await spawnHost("npm", ["start"], { PORT: String(port) }, port, 90_000);
    try {
      process.kill(server.child!.pid!, "SIGTERM"); // npm alone, as a supervisor would
      const exit = await new Promise<number | null>((r) => (server.child!.exitCode !== null ? r(server.child!.exitCode) : server.child!.once("exit", (code) => r(code))));
      expect(exit).toBe(0);
      let refused = false;
      for (let i = 0; i < 40 && !refused; i++) {
        refused = await fetch(`${server.baseURL}/health`).then(() => false, () => true);
        if (!refused) await new Promise((r) => setTimeout(r, 100));
      }
      expect(refused).toBe(true);
      expect(server.log!()).toContain("shutting down");
    } finally {
      await server.close();
    }
  });

  it("npm run start:deno (deno task start, as README says) serves, with the flags the tests use", async () => {
    // Deno's task runner resolves a bare `deno` to node_modules/.bin/deno and runs that binary as a
    // script: the task names the npm package's binary by path instead.
    const task = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")).tasks.start;
    expect(task).toBe(["./node_modules/deno/deno", ...DENO_RUN_ARGS].join(" "));
    const port = await freePort();
    const server = await spawnHost("npm", ["run", "start:deno"], { MODEL_DIR: "test/fixtures/tiny-model", PORT: String(port), DENO_NO_UPDATE_CHECK: "1" }, port, 90_000);
    try {
      expect(((await (await fetch(`${server.baseURL}/health`)).json()) as { status: string }).status).toBe("ok");
    } finally {
      await server.close();
    }
  });

  it("Deno: SIGINT the same, and streams are not cut when their response starts", async () => {
    const port = await freePort();
    const server = await spawnHost(bin("deno"), DENO_RUN_ARGS,
      { MODEL_DIR: "model", PORT: String(port), SHUTDOWN_GRACE_MS: "150", DENO_NO_UPDATE_CHECK: "1" }, port, 90_000);
    try {
      const { text, exit } = await streamThenSignal(server, "SIGINT");
      expect(text).toMatch(/"finish_reason":"(length|stop)"/);
      expect(text.trim().endsWith("data: [DONE]")).toBe(true);
      expect(exit).toBe(0);
    } finally {
      await server.close();
    }
  });
});

describe("8. stream latency in /metrics", () => {
  it("a stream's recorded duration lasts until its last event, not until its headers", async () => {
    const server = await startFixtureServer({ MODEL_DIR: join(ROOT, "model") });
    try {
      const durations = async () => {
        const text = await (await fetch(`${server.baseURL}/metrics`)).text();
        return Number(/^tinylm_request_duration_seconds_sum\{route="\/v1\/completions"\} ([\d.e+-]+)/m.exec(text)?.[1] ?? 0);
      };
      const before = await durations();
      const start = performance.now();
      const res = await post(server.baseURL, "/v1/completions", { model: "tinylm-edge-14m", prompt: "Once upon a time", max_tokens: 300, stream: true, temperature: 1, stop: [] });
      const headers = performance.now();
      await res.text();
      const end = performance.now();
      await new Promise((r) => setTimeout(r, 20));
      const recorded = (await durations()) - before;
      expect(end - headers).toBeGreaterThan(50); // the stream took a while after its headers
      expect(recorded * 1000).toBeGreaterThan(0.8 * (end - headers));
      expect(recorded * 1000).toBeLessThan(end - start + 50);
    } finally {
      await server.close();
    }
  });
});
