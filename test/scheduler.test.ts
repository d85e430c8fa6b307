// The scheduler (issue 27): one batched step of mixed rows per iteration, prompt chunks round-robin
// between requests, n choices sharing one prefill, and log-probabilities with one meaning.
// Fixture model on our kernels; steps are counted, not timed.
import { describe, expect, it } from "vitest";
import { Engine, type ChoiceParams, type GenerateRequest, type PromptRequest } from "../src/engine/engine.js";
import type { Decoder, StepInput } from "../src/engine/decoder.js";
import { DEFAULT_SAMPLING, logSoftmaxAt, type SamplingParams } from "../src/engine/sampler.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../src/model.js";
import { folderReader, KERNELS_WASM, simdDecoder } from "./helpers/fixture.js";
import { checkpointFixtures } from "./helpers/interop-fixtures.js";

const greedy = { ...DEFAULT_SAMPLING, temperature: 0 };
const longPrompt = (salt: number, length = 200) => Array.from({ length }, (_, i) => 300 + ((i * 31 + salt * 7) % 4000));

async function collect(gen: AsyncIterable<{ token: number }>): Promise<number[]> {
  const out: number[] = [];
  for await (const t of gen) out.push(t.token);
  return out;
}

/** A decoder that counts what it is fed: steps, prompt tokens (rows of more than one token). */
function counting(dec: Decoder) {
  const fed = { steps: 0, tokens: 0 };
  const wrapped: Decoder = {
    backend: dec.backend,
    shape: dec.shape,
    newCache: () => dec.newCache(),
    warmUp: () => dec.warmUp(),
    step: (inputs: StepInput[]) => {
      fed.steps++;
      fed.tokens += inputs.reduce((s, i) => s + i.tokens.length, 0);
      return dec.step(inputs as never);
    },
  };
  return { wrapped, fed };
}

describe("fair to every request", () => {
  const VICTIM_TOKENS = 160;

  /** Steps from the victim's arrival to its last token, while `attack` keeps `loops` requests in flight. */
  async function victimSteps(attack: ((engine: Engine, salt: number) => Promise<unknown>) | null): Promise<{ steps: number; served: number }> {
    const engine = new Engine(await simdDecoder(), { maxBatch: 8, maxQueue: 32, prefixCache: false });
    let attacking = attack !== null;
    let served = 0; // attacker requests answered while the victim ran
    const loops = attack
      ? Array.from({ length: 4 }, async (_, l) => {
          for (let i = 0; attacking; i++) {
            await attack(engine, l * 100 + i);
            served++;
          }
        })
      : [];
    if (attack) await new Promise((r) => setTimeout(r, 20)); // the flood is under way when the victim comes
    const before = engine.stats.steps;
    const tokens = await collect(engine.generate({ prompt: [8187, 5, 6], maxTokens: VICTIM_TOKENS, sampling: greedy, stopTokens: new Set(), client: "127.0.0.1" }));
    const steps = engine.stats.steps - before;
    const during = served;
    attacking = false;
    await Promise.all(loops);
    expect(tokens.length).toBe(VICTIM_TOKENS);
    return { steps, served: during };
  }

  const echoN = (n: number, client: string, echo: boolean) => (engine: Engine, salt: number) => {
    const prompt: PromptRequest = { prompt: longPrompt(salt), promptLogprobs: echo, client };
    const choice: ChoiceParams = { maxTokens: 1, sampling: greedy, stopTokens: new Set() };
    return Promise.all(engine.generateChoices(prompt, Array.from({ length: n }, () => choice)).map(collect));
  };

  it("each victim keeps at least half its solo rate in steps, whatever the attacker shares with it", async () => {
    const { steps: solo } = await victimSteps(null);
    const patterns = {
      "n = 8, echo + logprobs, same address": echoN(8, "127.0.0.1", true),
      "n = 8, echo + logprobs, another user": echoN(8, "a", true),
      "n = 1, echo + logprobs, same address": echoN(1, "127.0.0.1", true),
      "n = 8, no echo, same address": echoN(8, "127.0.0.1", false),
    };
    for (const [name, attack] of Object.entries(patterns)) {
      const { steps: attacked, served } = await victimSteps(attack);
      console.log(`victim under "${name}": ${solo} steps alone, ${attacked} attacked (${((100 * solo) / attacked).toFixed(0)}%), ${served} attacker requests served meanwhile`);
      expect(solo / attacked, name).toBeGreaterThanOrEqual(0.5);
      expect(served, name).toBeGreaterThanOrEqual(2); // the attack ran beside the victim, not after it
    }
  }, 120_000);
});

describe("n choices share one prefill", () => {
  it("n = 8 feeds the prompt once, and each choice generates what a request of its own would", async () => {
    const prompt = longPrompt(1);
    const sampling = (seed: number): SamplingParams => ({ ...DEFAULT_SAMPLING, temperature: 0.9, seed });
    const shared = counting(await simdDecoder());
    const engine = new Engine(shared.wrapped, { maxBatch: 8, maxQueue: 4, prefixCache: false });
    const choices = Array.from({ length: 8 }, (_, k): ChoiceParams => ({ maxTokens: 6, sampling: sampling(40 + k), stopTokens: new Set() }));
    const together = await Promise.all(engine.generateChoices({ prompt }, choices).map(collect));
    // One prefill: the prompt's tokens once, then 5 decode steps of 8 rows each.
    expect(shared.fed.tokens).toBe(prompt.length + 8 * 5);
    const alone = new Engine(await simdDecoder(), { maxBatch: 8, maxQueue: 4, prefixCache: false });
    for (const [k, c] of choices.entries()) expect(await collect(alone.generate({ prompt, ...c }))).toEqual(together[k]);
    expect(new Set(together.map((t) => t.join())).size).toBeGreaterThan(1); // the seeds differ, so do the choices
  });

  it("echo + logprobs computes the prompt's log-probabilities once, shared by every choice", async () => {
    const prompt = longPrompt(2, 150);
    const counted = counting(await simdDecoder());
    const engine = new Engine(counted.wrapped, { maxBatch: 8, maxQueue: 4, prefixCache: false });
    const gens = engine.generateChoices({ prompt, promptLogprobs: true }, Array.from({ length: 4 }, () => ({ maxTokens: 1, sampling: greedy, stopTokens: new Set<number>() })));
    await Promise.all(gens.map(collect));
    expect(counted.fed.tokens).toBe(prompt.length);
    expect(gens[0].promptLogprobs.length).toBe(prompt.length);
    for (const g of gens) expect(g.promptLogprobs).toBe(gens[0].promptLogprobs);
  });

  it("a batch smaller than n still runs every choice (the prompt is fed again for those that found no room)", async () => {
    const prompt = longPrompt(3, 40);
    const engine = new Engine(await simdDecoder(), { maxBatch: 1, maxQueue: 4, prefixCache: false });
    const outs = await Promise.all(engine.generateChoices({ prompt }, Array.from({ length: 3 }, () => ({ maxTokens: 5, sampling: greedy, stopTokens: new Set<number>() }))).map(collect));
    const ref = await collect(new Engine(await simdDecoder(), { maxBatch: 1, maxQueue: 4, prefixCache: false }).generate({ prompt, maxTokens: 5, sampling: greedy, stopTokens: new Set() }));
    expect(outs).toEqual([ref, ref, ref]);
    expect(engine.stats.running).toBe(0);
  });

  it("max_tokens 0 with prompt log-probabilities feeds the prompt and generates nothing", async () => {
    const engine = new Engine(await simdDecoder(), { maxBatch: 2, maxQueue: 4, prefixCache: false });
    const [gen] = engine.generateChoices({ prompt: longPrompt(4, 30), promptLogprobs: true }, [{ maxTokens: 0, sampling: greedy, stopTokens: new Set() }]);
    expect(await collect(gen)).toEqual([]);
    expect(gen.promptLogprobs.slice(1).every((lp) => typeof lp === "number" && lp < 0)).toBe(true);
    expect(engine.stats.generatedTokens).toBe(0);
  });
});

describe("echo + logprobs: the logits a step hands to JS are bounded in bytes", () => {
  it("a 32k vocabulary gets 16 positions per step (4 MiB of logits and probabilities; 64 at the fixture's 8k), with the log-probabilities of one whole-prompt step", async () => {
    const model = await loadModel(folderReader(join(checkpointFixtures(), "llama-safetensors")), {
      ort: null, kernels: () => WebAssembly.compile(readFileSync(KERNELS_WASM)), engine: { maxBatch: 2, maxQueue: 2, prefixCache: false }, onnxFile: "onnx/model_quantized.onnx", log: () => {},
    });
    const dec = model.engine.decoder, V = dec.shape.vocabSize;
    expect(V).toBe(32000);
    const allRows: number[] = [];
    const wrapped: Decoder = {
      backend: dec.backend, shape: dec.shape, newCache: () => dec.newCache(), warmUp: () => dec.warmUp(),
      step: (inputs: StepInput[]) => {
        for (const i of inputs) if (i.logits === "all") allRows.push(i.tokens.length);
        return dec.step(inputs as never);
      },
    };
    const prompt = Array.from({ length: 50 }, (_, i) => 300 + ((i * 37) % 20000));
    const [g] = new Engine(wrapped, { maxBatch: 2, maxQueue: 2, prefixCache: false })
      .generateChoices({ prompt, promptLogprobs: true }, [{ maxTokens: 0, sampling: greedy, stopTokens: new Set() }]);
    await collect(g);
    expect(allRows).toEqual([16, 16, 16, 2]); // 4 MiB / (2 × 4 bytes × 32,000)
    const [{ logits }] = await dec.step([{ cache: dec.newCache(), tokens: prompt, logits: "all" }]);
    expect(g.promptLogprobs[0]).toBeNull();
    for (let i = 1; i < prompt.length; i++) expect(g.promptLogprobs[i]).toBeCloseTo(logSoftmaxAt(logits.subarray((i - 1) * V, i * V), prompt[i], new Map()), 3);
  });
});

describe("log-probabilities have one meaning", () => {
  it("the model's log-softmax after logit_bias, whatever temperature, top-p, top-k or min-p", async () => {
    const dec = await simdDecoder();
    const prompt = [8187, 300, 301, 302];
    const [{ logits }] = await dec.step([{ cache: dec.newCache(), tokens: prompt }]);
    const bias = new Map([[977, 3]]);
    const run = async (s: Partial<SamplingParams>) => {
      const engine = new Engine(dec, { maxBatch: 2, maxQueue: 4, prefixCache: false });
      const req: GenerateRequest = { prompt, maxTokens: 1, sampling: { ...DEFAULT_SAMPLING, logprobs: 3, seed: 5, ...s }, stopTokens: new Set() };
      for await (const t of engine.generate(req)) return t;
      throw new Error("no token");
    };
    for (const s of [{ temperature: 0 }, { temperature: 1 }, { temperature: 0.7 }, { temperature: 1.3, topP: 0.99 }, { temperature: 0.8, topK: 5, minP: 0.05 }, { temperature: 0, logitBias: bias }, { temperature: 0.5, topP: 0.9, logitBias: bias }]) {
      const t = await run(s);
      const b = s.logitBias ?? new Map();
      expect(t.logprob, JSON.stringify(s)).toBeCloseTo(logSoftmaxAt(logits, t.token, b), 4);
      for (const alt of t.top) expect(alt.logprob).toBeCloseTo(logSoftmaxAt(logits, alt.token, b), 4);
    }
  });
});
