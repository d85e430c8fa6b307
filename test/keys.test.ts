// API_KEYS: named keys with limits. Parsing and the token bucket on their own; then the Node host in
// a process of its own (so its real stdout and stderr are captured) with two named keys from a file:
// one over its token rate gets 429 + Retry-After while the other streams on, /metrics counts per
// name, and no key appears in any log line or metric.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyLimiter, parseApiKeys } from "../src/key-limits.js";
import { apiKeysFrom } from "../src/hosts/config.js";
import { FIXTURE_DIR } from "./helpers/fixture.js";
import { freePort, spawnHost } from "./helpers/spawn.js";
import type { RunningServer } from "./helpers/server.js";

const ROOT = join(import.meta.dirname, "..");

describe("API_KEYS parsing", () => {
  it("reads name:key entries with optional limits from a list or a file, beside API_KEY", () => {
    expect(parseApiKeys("alice:sk-a:concurrency=2:tpm=6000, bob:sk-b\n# comment\n\ncarol:sk-c:tpm=10")).toEqual([
      { name: "alice", key: "sk-a", concurrency: 2, tokensPerMinute: 6000 },
      { name: "bob", key: "sk-b" },
      { name: "carol", key: "sk-c", tokensPerMinute: 10 },
    ]);
    const file = join(mkdtempSync(join(tmpdir(), "keys-")), "keys.txt");
    writeFileSync(file, "# name:key\nalice:sk-a:tpm=5\n");
    expect(apiKeysFrom({ API_KEY: "sk-0", API_KEYS: file }, (p) => readFileSync(p, "utf8"))).toEqual([
      { name: "default", key: "sk-0" },
      { name: "alice", key: "sk-a", tokensPerMinute: 5 },
    ]);
  });

  it("refuses bad entries naming the entry, never repeating a key", () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ API_KEYS: "alice:sk-secret-1:tpm=0" }, /entry 1 \(alice\).*N ≥ 1/],
      [{ API_KEYS: "alice:sk-secret-1:speed=3" }, /options are concurrency=N and tpm=N/],
      [{ API_KEYS: "alice:sk-secret-1,alice:sk-secret-2" }, /entry 2 \(alice\): the name alice is used twice/],
      [{ API_KEYS: "alice:sk-secret-1,bob:sk-secret-1" }, /entry 2 \(bob\): the same key/],
      [{ API_KEYS: "bad name:sk-secret-1" }, /entry 1: a key's name/],
      [{ API_KEYS: "alice:" }, /name:key/],
      [{ API_KEY: "sk-secret-1", API_KEYS: "default:sk-secret-2" }, /API_KEY's/],
      [{ API_KEYS: "sk-secret-1" }, /names a file/], // a bare key: read as a path, and not repeated
    ];
    for (const [env, message] of bad) {
      const read = (path: string) => {
        throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: "ENOENT" });
      };
      expect(() => apiKeysFrom(env, read)).toThrow(message);
      try {
        apiKeysFrom(env, read);
      } catch (err) {
        expect((err as Error).message).not.toContain("sk-secret");
      }
    }
  });

  it("a token bucket: admitted while it holds a token, refilled per minute, Retry-After until it does again", () => {
    let now = 0;
    const limiter = new KeyLimiter({ name: "a", key: "k", tokensPerMinute: 60, concurrency: 2 }, () => now);
    const first = limiter.admit();
    expect("release" in first).toBe(true);
    limiter.charge(70); // one long reply: the bucket goes below zero
    const refused = limiter.admit();
    expect(refused).toMatchObject({ retryAfterSeconds: 11 }); // 60 - 70 = -10: 11 tokens at one a second
    now += 11_000;
    const second = limiter.admit();
    const third = limiter.admit();
    expect("release" in second && !("release" in third)).toBe(true); // two running: the concurrency limit
    expect(third).toMatchObject({ retryAfterSeconds: 1, message: expect.stringContaining("concurrent") });
    if ("release" in first) first.release();
    if ("release" in first) first.release(); // twice is once
    expect("release" in limiter.admit()).toBe(true);
    expect("release" in limiter.admit()).toBe(false);
  });
});

describe("two named keys on the Node host", () => {
  const ALICE = "sk-alice-0123456789";
  const BOB = "sk-bob-abcdefghij";
  let server: RunningServer;
  beforeAll(async () => {
    const file = join(mkdtempSync(join(tmpdir(), "keys-")), "keys.txt");
    writeFileSync(file, `# name:key[:concurrency=N][:tpm=N]\nalice:${ALICE}:tpm=20\nbob:${BOB}:concurrency=1\n`);
    const port = await freePort();
    server = await spawnHost(join(ROOT, "node_modules/.bin/tsx"), ["src/hosts/node.ts"], { MODEL_DIR: FIXTURE_DIR, PORT: String(port), HOST: "127.0.0.1", API_KEYS: file }, port);
  }, 120_000);
  afterAll(() => server?.close());

  const generate = (key: string, body: Record<string, unknown>) => fetch(`${server.baseURL}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
    // The end-of-text token banned: a reply is exactly max_tokens long.
    body: JSON.stringify({ model: "tinylm-fixture", prompt: "Once upon a time", temperature: 0, logit_bias: { "8187": -100 }, ...body }),
  });

  it("one key over its token rate gets 429 + Retry-After while the other streams on; /metrics counts per name; no key in logs or metrics", async () => {
    expect((await generate(ALICE, { max_tokens: 30 })).status).toBe(200); // 20 a minute: the bucket is 10 below zero
    const stream = await generate(BOB, { max_tokens: 200, stream: true });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    let text = new TextDecoder().decode((await reader.read()).value);
    const limited = await generate(ALICE, { max_tokens: 4 });
    expect(limited.status).toBe(429);
    const retry = Number(limited.headers.get("retry-after")); // 11 tokens at 20 a minute, less what refilled since
    expect(retry).toBeGreaterThan(25);
    expect(retry).toBeLessThanOrEqual(33);
    expect(((await limited.json()) as { error: object }).error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded", message: expect.stringContaining("alice") });
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
    const events = text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
    expect(events.at(-1)).toBe("[DONE]");
    expect(events.length - 1).toBeGreaterThan(150); // one event per token (a held-back partial character aside)

    // bob's concurrency limit: of simultaneous requests, one runs and the others are refused.
    const together = await Promise.all([0, 1, 2].map(() => generate(BOB, { max_tokens: 200 })));
    const statuses = together.map((r) => r.status).sort();
    expect(statuses[0]).toBe(200);
    expect(statuses.at(-1)).toBe(429);
    const refused = together.find((r) => r.status === 429)!;
    expect(refused.headers.get("retry-after")).toBe("1");
    await Promise.all(together.map((r) => r.text()));

    const unauthorized = await fetch(`${server.baseURL}/metrics`);
    expect(unauthorized.status).toBe(401);
    const metrics = await (await fetch(`${server.baseURL}/metrics`, { headers: { Authorization: `Bearer ${BOB}` } })).text();
    expect(metrics).toContain('tinylm_key_requests_total{key="alice"} 2');
    expect(metrics).toContain('tinylm_key_generated_tokens_total{key="alice"} 30');
    expect(metrics).toContain('tinylm_key_rate_limited_total{key="alice"} 1');
    expect(metrics).toMatch(/tinylm_key_requests_total\{key="bob"\} 5\n/); // a stream, three together, this /metrics
    expect(metrics).toMatch(/tinylm_key_rate_limited_total\{key="bob"\} [12]\n/);
    const bobTokens = Number(/tinylm_key_generated_tokens_total\{key="bob"\} (\d+)/.exec(metrics)![1]);
    expect(bobTokens).toBe(200 * (1 + together.filter((r) => r.status === 200).length));
    const log = server.log!();
    expect(log).toMatch(/POST \/v1\/completions 429 key alice/);
    for (const key of [ALICE, BOB]) {
      expect(log).not.toContain(key);
      expect(metrics).not.toContain(key);
    }
  });

  it("a stream its client cancels gives its concurrency slot back", async () => {
    const abort = new AbortController();
    const stream = await fetch(`${server.baseURL}/v1/completions`, {
      method: "POST",
      signal: abort.signal,
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${BOB}` },
      body: JSON.stringify({ model: "tinylm-fixture", prompt: "Once upon a time", max_tokens: 200, logit_bias: { "8187": -100 }, stream: true }),
    });
    await stream.body!.getReader().read();
    abort.abort();
    let status = 0;
    for (let i = 0; i < 40 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const res = await generate(BOB, { max_tokens: 1 });
      status = res.status;
      await res.text();
    }
    expect(status).toBe(200);
  });

  it("prompt_cache_key scopes the prefix cache within a key", async () => {
    const reused = async () => {
      const text = await (await fetch(`${server.baseURL}/metrics`, { headers: { Authorization: `Bearer ${BOB}` } })).text();
      return Number(/tinylm_prompt_tokens_reused_total (\d+)/.exec(text)![1]);
    };
    const prompt = "The old lighthouse keeper climbed the stairs every evening to light the lamp, and";
    const run = async (cacheKey: string) => expect((await generate(BOB, { prompt, max_tokens: 2, prompt_cache_key: cacheKey })).status).toBe(200);
    await run("x");
    const before = await reused();
    await run("y"); // another scope: nothing reused
    expect(await reused()).toBe(before);
    await run("y"); // the same scope: the prompt comes from the cache
    expect(await reused()).toBeGreaterThan(before);
  });
});
