// Unit tests: sampler transforms, stop-string holdback, and the engine's batching and prefix cache
// (optimisations must keep greedy outputs identical).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  applyLogitBias, applyMinP, applyPenalties, applyTemperature, applyTopK, applyTopP, argmax, createRng,
  DEFAULT_SAMPLING, logSoftmaxAt, probsTemperature, sample, topLogprobs,
} from "../src/engine/sampler.js";
import { Engine, type GeneratedToken } from "../src/engine/engine.js";
import { StopTextStream, longestStopPrefixSuffix } from "../src/openai/text-stream.js";
import { loadTokenizer } from "../scripts/tokenizer/files.js";
import { FIXTURE_DIR, webDecoder } from "./helpers/fixture.js";

const logits = () => Float32Array.from([2, 1, 0, -1, 3]);

describe("sampler transforms", () => {
  it("the decoder's probabilities are at the request's temperature, or 1 for greedy", () => {
    expect(probsTemperature({ ...DEFAULT_SAMPLING, temperature: 0.7 })).toBe(0.7);
    expect(probsTemperature({ ...DEFAULT_SAMPLING, temperature: 0 })).toBe(1);
  });

  it("logit bias adds to the listed ids only", () => {
    const l = logits();
    applyLogitBias(l, new Map([[1, 5], [99, 1]]));
    expect(Array.from(l)).toEqual([2, 6, 0, -1, 3]);
  });

  it("penalties: presence once, frequency per occurrence, repetition divides positive / multiplies negative", () => {
    const l = logits();
    applyPenalties(l, new Map([[0, 2], [3, 1]]), { ...DEFAULT_SAMPLING, presencePenalty: 0.5, frequencyPenalty: 0.25 });
    expect(Array.from(l)).toEqual([2 - 0.5 - 0.5, 1, 0, -1 - 0.25 - 0.5, 3]);
    const r = logits();
    applyPenalties(r, new Map([[0, 1], [3, 1]]), { ...DEFAULT_SAMPLING, repetitionPenalty: 2 });
    expect(Array.from(r)).toEqual([1, 1, 0, -2, 3]);
  });

  it("temperature scales, top-k keeps k, top-p keeps the smallest prefix reaching p, min-p cuts relative to the max", () => {
    const t = logits();
    applyTemperature(t, 0.5);
    expect(Array.from(t)).toEqual([4, 2, 0, -2, 6]);
    const k = logits();
    applyTopK(k, 2);
    expect(Array.from(k)).toEqual([2, -Infinity, -Infinity, -Infinity, 3]);
    const p = logits(); // probs ≈ [.23, .09, .03, .01, .63]
    applyTopP(p, 0.7);
    expect(Array.from(p)).toEqual([2, -Infinity, -Infinity, -Infinity, 3]);
    const m = logits();
    applyMinP(m, 0.3); // keeps p ≥ 0.3 · p_max: e^(l-3) ≥ 0.3 ⇔ l ≥ 3 + ln 0.3 ≈ 1.8
    expect(Array.from(m)).toEqual([2, -Infinity, -Infinity, -Infinity, 3]);
  });

  it("greedy picks the argmax; logprobs come from the processed distribution", () => {
    const s = sample(logits(), new Map(), { ...DEFAULT_SAMPLING, temperature: 0, logprobs: 2 }, createRng(1));
    expect(s.token).toBe(4);
    expect(s.logprob).toBeCloseTo(logSoftmaxAt(logits(), 4), 6);
    expect(s.top.map((t) => t.token)).toEqual([4, 0]);
    expect(topLogprobs(logits(), 1)[0].logprob).toBeCloseTo(s.logprob, 6);
  });

  it("sampling follows the distribution and is reproducible per seed", () => {
    const rng = createRng(42);
    const hits = new Array(5).fill(0);
    for (let i = 0; i < 20_000; i++) hits[sample(logits(), new Map(), DEFAULT_SAMPLING, rng).token]++;
    const probs = Array.from(logits(), (l) => Math.exp(l)).map((e, _, a) => e / a.reduce((x, y) => x + y));
    hits.forEach((h, i) => expect(Math.abs(h / 20_000 - probs[i])).toBeLessThan(0.015));
    const a = createRng(7), b = createRng(7);
    expect(Array.from({ length: 5 }, () => a())).toEqual(Array.from({ length: 5 }, () => b()));
  });

  it("top-k, top-p and top logprobs over a large vocabulary equal a full sort's answer", () => {
    // The fast paths (short insertion list, buckets by distance from the best) against the plain definition.
    const sortedIds = (l: Float32Array) => Array.from(l.keys()).filter((i) => l[i] > -Infinity).sort((a, b) => l[b] - l[a] || a - b);
    const vocab = fc.array(fc.oneof(fc.integer({ min: -40, max: 12 }).map((x) => x / 2), fc.double({ min: -60, max: 15, noNaN: true })), { minLength: 1, maxLength: 3000 });
    fc.assert(fc.property(vocab, fc.integer({ min: 1, max: 80 }), fc.double({ min: 0.01, max: 0.99, noNaN: true }), (values, k, topP) => {
      const raw = Float32Array.from(values);
      const order = sortedIds(raw);
      const top = topLogprobs(raw, k).map((t) => t.token);
      expect(top).toEqual(order.slice(0, k));
      const kept = new Float32Array(raw);
      applyTopK(kept, k);
      expect(sortedIds(kept)).toEqual(k >= raw.length ? order : order.slice(0, k));
      const max = raw[order[0]];
      const probs = Array.from(raw, (l) => Math.exp(l - max));
      const z = probs.reduce((a, b) => a + b);
      let n = 0;
      for (let cumulative = 0; n < order.length && cumulative < topP * z; n++) cumulative += probs[order[n]];
      const nucleus = new Float32Array(raw);
      applyTopP(nucleus, topP);
      const got = sortedIds(nucleus);
      // Summation order differs, so a token whose inclusion hinges on the last ulp may differ by one.
      expect(Math.abs(got.length - n)).toBeLessThanOrEqual(1);
      expect(got).toEqual(order.slice(0, got.length));
    }), { numRuns: 300 });
  });

  it("with the graph's probabilities: same greedy token and log-probabilities, same distribution", () => {
    const softmax = (l: Float32Array, t: number) => {
      const e = Array.from(l, (x) => Math.exp(x / t));
      const z = e.reduce((a, b) => a + b);
      return Float32Array.from(e, (x) => x / z);
    };
    const greedy = { ...DEFAULT_SAMPLING, temperature: 0, logprobs: 3 };
    const fast = sample(logits(), new Map(), greedy, createRng(1), softmax(logits(), 1));
    const slow = sample(logits(), new Map(), greedy, createRng(1));
    expect(fast.token).toBe(slow.token);
    expect(fast.logprob).toBeCloseTo(slow.logprob, 6);
    expect(fast.top.map((t) => t.token)).toEqual(slow.top.map((t) => t.token));
    fast.top.forEach((t, i) => expect(t.logprob).toBeCloseTo(slow.top[i].logprob, 6));
    const warm = { ...DEFAULT_SAMPLING, temperature: 0.7 };
    const probs = softmax(logits(), 0.7);
    const rng = createRng(3);
    const hits = new Array(5).fill(0);
    for (let i = 0; i < 20_000; i++) hits[sample(logits(), new Map(), warm, rng, probs).token]++;
    hits.forEach((h, i) => expect(Math.abs(h / 20_000 - probs[i])).toBeLessThan(0.015));
    // Any other transform falls back to processing the logits.
    const biased = sample(logits(), new Map(), { ...greedy, logitBias: new Map([[2, 10]]) }, createRng(1), softmax(logits(), 1));
    expect(biased.token).toBe(2);
  });

  it("never samples a token removed by the transforms", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer(), (k, seed) => {
      const s = sample(logits(), new Map(), { ...DEFAULT_SAMPLING, topK: k, seed }, createRng(seed));
      const allowed = [4, 0, 1, 2, 3].slice(0, k);
      return allowed.includes(s.token);
    }), { numRuns: 500 });
  });
});

describe("stop-string holdback", () => {
  const tokenizer = loadTokenizer(FIXTURE_DIR);

  function run(text: string, stops: string[]) {
    const stream = new StopTextStream(tokenizer.streamDecoder(), stops);
    const chunks: string[] = [];
    for (const id of tokenizer.encode(text)) {
      chunks.push(stream.push(id));
      if (stream.stopped) break;
    }
    chunks.push(stream.flush());
    return { chunks, text: chunks.join(""), stopped: stream.stopped };
  }

  it("cuts at the first stop string and never emits any part of it", () => {
    const r = run("The cat sat. END of story, really END.", ["END", "never"]);
    expect(r.text).toBe("The cat sat. ");
    expect(r.stopped).toBe(true);
    expect(r.chunks.some((c) => c.includes("E") && !"The cat sat. ".includes(c))).toBe(false);
  });

  it("releases held-back text that turned out not to be a stop string", () => {
    const r = run("I said ENough.", ["END"]);
    expect(r.text).toBe("I said ENough.");
    expect(r.stopped).toBe(false);
  });

  it("property: output is the text before the earliest stop, with no chunk ending inside a stop prefix that completes", () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), fc.array(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }), (text, stops) => {
      const r = run(text, stops);
      const cuts = stops.map((s) => text.indexOf(s)).filter((i) => i >= 0);
      const expected = cuts.length ? text.slice(0, Math.min(...cuts)) : text;
      return r.text === expected;
    }), { numRuns: 2000 });
  });

  it("longest suffix that could begin a stop string", () => {
    expect(longestStopPrefixSuffix("hello wor", ["world"])).toBe(3);
    expect(longestStopPrefixSuffix("hello", ["xyz"])).toBe(0);
  });
});

describe("engine", () => {
  const greedy = { ...DEFAULT_SAMPLING, temperature: 0 };

  async function collect(gen: AsyncIterable<GeneratedToken>): Promise<number[]> {
    const out: number[] = [];
    for await (const t of gen) out.push(t.token);
    return out;
  }

  it("batched decoding gives the same greedy tokens as one sequence at a time (fp32)", async () => {
    const prompts = [[8187, 300, 301, 302], [8187, 1000, 1001], [8187, 40, 41, 42, 43, 44], [8187, 7]];
    const serial = new Engine(await webDecoder("onnx/model.onnx"), { maxBatch: 1, maxQueue: 16, prefixCache: false });
    const batched = new Engine(await webDecoder("onnx/model.onnx"), { maxBatch: 4, maxQueue: 16, prefixCache: false });
    const run = (e: Engine) => prompts.map((prompt) => collect(e.generate({ prompt, maxTokens: 12, sampling: greedy, stopTokens: new Set() })));
    const a = await Promise.all(run(serial));
    const b = await Promise.all(run(batched));
    expect(b).toEqual(a);
    expect(batched.stats.steps).toBeLessThan(serial.stats.steps);
  });

  it("the decoder's persistent past window follows batches that repeat, reorder, shrink and outgrow it (fp32)", async () => {
    // One decoder reuses its batched past inputs between steps; the other sees every sequence alone.
    const shared = await webDecoder("onnx/model.onnx");
    const alone = await webDecoder("onnx/model.onnx");
    const prompts = [[8187, 300, 301], [8187, 1000, 1001, 1002, 1003], [8187, 7]];
    const caches = prompts.map(() => shared.newCache());
    const refs = prompts.map(() => alone.newCache());
    const next = prompts.map(() => 0);
    const check = async (rows: number[], fed: (r: number) => number[]) => {
      const outs = await shared.step(rows.map((r) => ({ cache: caches[r], tokens: fed(r) })));
      for (const [j, r] of rows.entries()) {
        const [ref] = await alone.step([{ cache: refs[r], tokens: fed(r) }]);
        let worst = 0;
        ref.logits.forEach((l, i) => (worst = Math.max(worst, Math.abs(l - outs[j].logits[i]))));
        expect(worst).toBeLessThan(1e-4);
        next[r] = argmax(ref.logits);
      }
    };
    await check([0, 1, 2], (r) => prompts[r]); // a batched prefill of different lengths
    const schedule = [[0, 1, 2], [0, 1, 2], [2, 0, 1], [0, 1], [0, 1], [1, 2], [0, 1, 2]];
    for (let step = 0; step < 45; step++) await check(schedule[Math.min(step >> 3, schedule.length - 1)], (r) => [next[r]]);
    expect(caches.map((c) => c.length)).toEqual(refs.map((c) => c.length));
    expect(Math.max(...caches.map((c) => c.length))).toBeGreaterThan(32); // crossed a window boundary
  });

  it("the prefix cache reuses a shared prompt and keeps greedy output identical (fp32)", async () => {
    const engine = new Engine(await webDecoder("onnx/model.onnx"), { maxBatch: 4, maxQueue: 16, prefixCache: true });
    const fresh = new Engine(await webDecoder("onnx/model.onnx"), { maxBatch: 4, maxQueue: 16, prefixCache: false });
    const base = [8187, 300, 301, 302, 303, 304, 305];
    await collect(engine.generate({ prompt: base, maxTokens: 4, sampling: greedy, stopTokens: new Set() }));
    const longer = [...base, 306, 307];
    const reused = await collect(engine.generate({ prompt: longer, maxTokens: 8, sampling: greedy, stopTokens: new Set() }));
    expect(engine.stats.reusedPromptTokens).toBe(base.length);
    expect(reused).toEqual(await collect(fresh.generate({ prompt: longer, maxTokens: 8, sampling: greedy, stopTokens: new Set() })));
  });

  it("a cancelled generation frees its slot at the next step", async () => {
    const engine = new Engine(await webDecoder("onnx/model_quantized.onnx"), { maxBatch: 2, maxQueue: 4, prefixCache: false });
    const ac = new AbortController();
    const gen = engine.generate({ prompt: [8187, 5], maxTokens: 100, sampling: greedy, stopTokens: new Set(), signal: ac.signal });
    const it = gen[Symbol.asyncIterator]();
    await it.next();
    ac.abort();
    expect((await it.next()).done).toBe(true);
    await collect(engine.generate({ prompt: [8187, 6], maxTokens: 2, sampling: greedy, stopTokens: new Set() }));
    expect(engine.stats.running).toBe(0);
    expect(engine.stats.queued).toBe(0);
  });
});

it("argmax of ties is the first", () => expect(argmax(Float32Array.from([1, 3, 3]))).toBe(1));
