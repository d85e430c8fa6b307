// Node host: sampling defaults from generation_config.json, latency histograms, the access log, and
// a body far over the limit answered with a 413 the client can read (issue 17).
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { request } from "undici";
import { generationDefaults } from "../src/model.js";
import { samplingParams } from "../src/openai/params.js";
import { MODEL } from "./api-cases.js";
import { startFixtureServer, type RunningServer } from "./helpers/server.js";

const post = (base: string, body: unknown) => fetch(`${base}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

describe("generation_config.json defaults", () => {
  it("fill what a request leaves out, and only that", () => {
    const defaults = generationDefaults({ do_sample: true, temperature: 0.8, top_p: 0.95, top_k: 40, max_length: 512, bogus: "x" });
    expect(defaults).toEqual({ temperature: 0.8, top_p: 0.95, top_k: 40 });
    const base = { model: MODEL, prompt: "x" };
    expect(samplingParams(base, 8192, 0, 0, defaults)).toMatchObject({ temperature: 0.8, topP: 0.95, topK: 40 });
    expect(samplingParams({ ...base, temperature: 0.2, top_p: 1, top_k: 0 }, 8192, 0, 0, defaults)).toMatchObject({ temperature: 0.2, topP: 1, topK: 0 });
    expect(generationDefaults({ do_sample: false, temperature: 0.7 }).temperature).toBe(0); // greedy
    expect(generationDefaults({ temperature: -1, top_p: 7 })).toEqual({});
  });
});

describe("metrics and access log", () => {
  let server: RunningServer;
  beforeAll(async () => (server = await startFixtureServer({ LOG: "" })));
  afterAll(() => server.close());

  it("/metrics has time-to-first-token and inter-token histograms that count each choice's tokens", async () => {
    const read = async () => {
      const text = await (await fetch(`${server.baseURL}/metrics`)).text();
      const count = (name: string) => Number(new RegExp(`^${name}_count\\S* (\\d+)`, "m").exec(text)?.[1]);
      return { ttft: count("tinylm_time_to_first_token_seconds"), itl: count("tinylm_inter_token_latency_seconds") };
    };
    const before = await read();
    const res = await post(server.baseURL, { model: MODEL, prompt: "Once", max_tokens: 5, n: 2, temperature: 1, stop: [] });
    const body = (await res.json()) as { usage: { completion_tokens: number } };
    const after = await read();
    expect(after.ttft - before.ttft).toBe(2); // one first token per choice
    expect(after.itl - before.itl).toBe(body.usage.completion_tokens - 2);
  });

  it("writes one access-log line per request, with tokens in and out", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      await post(server.baseURL, { model: MODEL, prompt: "Once upon a time", max_tokens: 3, temperature: 0 });
      const lines = log.mock.calls.map((c) => String(c[0])).filter((l) => l.startsWith("POST /v1/completions"));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^POST \/v1\/completions 200 tokens 4 in, [1-3] out \d+ ms$/);
    } finally {
      log.mockRestore();
    }
  });

  it("a 12 MB body gets a 413 error object the client reads (no reset mid-upload)", async () => {
    const body = JSON.stringify({ model: MODEL, prompt: "x".repeat(12_000_000) });
    for (let i = 0; i < 4; i++) {
      const res = await request(`${server.baseURL}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(res.statusCode).toBe(413);
      expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe("request_too_large");
    }
  });
});
