// What the scheduler needs of a decoder backend, whichever runs the model: onnxruntime-web
// (ort/: onnx-model.ts for graphs in our contract, standard-onnx-model.ts for the standard one) or our own
// WebAssembly SIMD kernels (simd/).
import { softmaxInto } from "./sampler.js";

/** The KV cache's shape: per layer, kvHeads heads of headDim for keys and as many for values. */
export interface KvShape {
  layers: number;
  kvHeads: number;
  headDim: number;
}

/** The parts of config.json (Hugging Face Llama keys) the engine needs. */
export interface ModelShape extends KvShape {
  vocabSize: number;
  maxLength: number;
}

/**
 * Decoder families whose cache is what the ORT backends feed: past_key_values.{i}.key/value of
 * [batch, num_key_value_heads, past, head_dim], RoPE positions, one causal stack (Llama's layout).
 */
const LLAMA_LIKE = ["llama", "mistral", "qwen2", "qwen3"];

export function modelShapeFromConfig(config: Record<string, unknown>, source = "config.json"): ModelShape {
  if (!LLAMA_LIKE.includes(String(config.model_type))) {
    throw new Error(`${source}: "model_type" is ${JSON.stringify(config.model_type)}; this server runs Llama-family decoders (${LLAMA_LIKE.join(", ")})`);
  }
  const num = (key: string): number => {
    const v = config[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new Error(`${source}: "${key}" must be a positive integer`);
    return v;
  };
  const heads = num("num_attention_heads");
  return {
    layers: num("num_hidden_layers"),
    kvHeads: num("num_key_value_heads"),
    headDim: typeof config.head_dim === "number" ? (config.head_dim as number) : num("hidden_size") / heads,
    vocabSize: num("vocab_size"),
    maxLength: num("max_position_embeddings"),
  };
}

/** One sequence's keys and values so far, owned by a backend. */
export interface SequenceCache {
  /** Positions held. */
  readonly length: number;
  /** A new cache holding the first `length` positions of this one (shared prompt prefixes). */
  prefix(length: number): SequenceCache;
  /** Give its memory back (a backend with its own heap reuses it); the cache is empty afterwards. */
  release(): void;
}

export interface StepInput<C extends SequenceCache = SequenceCache> {
  cache: C;
  /** New tokens to feed (a prompt remainder, or the last sampled token). */
  tokens: number[];
  /** Temperature of the returned probabilities, > 0 (default 1; the engine's is sampler.probsTemperature). */
  temperature?: number;
  /** Which positions' logits to return (default "last"). */
  logits?: LogitsWanted;
}

/** Per sequence: logits and softmax(logits / temperature), [positions × vocab] each (empty for "none"). */
export interface StepOutput {
  logits: Float32Array;
  probs: Float32Array;
}

/**
 * Which positions' logits a row returns: its last fed token's (sampling), every fed token's (prompt
 * log-probabilities), or none (a prompt chunk before the last).
 */
export type LogitsWanted = "last" | "all" | "none";

export interface Decoder<C extends SequenceCache = SequenceCache> {
  /** "simd" (our kernels) or "ort" (onnxruntime-web, or native onnxruntime in tests and the bench). */
  readonly backend: "simd" | "ort";
  readonly shape: ModelShape;
  newCache(): C;
  /** Run each code path once so the first request does not pay for compilation. */
  warmUp(): Promise<void>;
  /**
   * One batched step of mixed rows, as llama.cpp's llama_batch: feed each sequence its new tokens
   * (decode rows and prompt chunks alike), append their keys and values to its cache and return, per
   * sequence, the logits and probabilities its `logits` asks for. A step that throws changes no cache.
   */
  step(inputs: StepInput<C>[]): Promise<StepOutput[]>;
}

const NO_LOGITS: StepOutput = { logits: new Float32Array(0), probs: new Float32Array(0) };

/**
 * For backends whose one run pads every sequence to the longest feed (onnxruntime-web): a step's
 * rows in groups of one feed length and one kind of logits, each group one run ("none" runs as
 * "last" and its output is dropped). Decode rows (one token each) share one run.
 */
export async function stepInGroups<C extends SequenceCache>(inputs: StepInput<C>[], run: (group: StepInput<C>[], wanted: "last" | "all") => Promise<StepOutput[]>): Promise<StepOutput[]> {
  const groups = new Map<string, number[]>();
  inputs.forEach((input, i) => {
    const key = `${input.logits === "all" ? "all" : "last"}:${input.tokens.length}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const outputs: StepOutput[] = new Array(inputs.length);
  for (const [key, rows] of groups) {
    const outs = await run(rows.map((i) => inputs[i]), key.startsWith("all") ? "all" : "last");
    rows.forEach((i, j) => (outputs[i] = inputs[i].logits === "none" ? NO_LOGITS : outs[j]));
  }
  return outputs;
}

/**
 * Run a prefill, a short prefill with every position's logits and a batched decode step once, so the
 * code they use is compiled before the first request (V8 compiles WebAssembly lazily, function by
 * function: ORT's first 128-token prefill took ~150 ms, later ones 20), then give the caches back.
 */
export async function runEachPathOnce<C extends SequenceCache>(decoder: Decoder<C>): Promise<void> {
  const caches = [decoder.newCache(), decoder.newCache()];
  const prompt = Array.from({ length: Math.min(128, decoder.shape.maxLength - 2) }, (_, i) => i % decoder.shape.vocabSize);
  await decoder.step([{ cache: caches[0], tokens: prompt }]);
  await decoder.step([{ cache: caches[1], tokens: prompt.slice(0, 5), logits: "all" }]);
  await decoder.step(caches.map((cache) => ({ cache, tokens: [1] })));
  for (const c of caches) c.release();
}

/**
 * The model's logits cut to the tokenizer's ids. Hugging Face models often pad vocab_size past the
 * tokenizer (to a multiple of 64 or 128: Qwen2, Phi-3): those rows are never tokens, so they are
 * dropped here and the probabilities renormalised over the rest, and nothing downstream (sampling,
 * log-probabilities, decoding) ever sees a padded id.
 */
export class TokenizerVocabulary<C extends SequenceCache> implements Decoder<C> {
  readonly shape: ModelShape;

  constructor(private readonly inner: Decoder<C>, vocab: number) {
    this.shape = { ...inner.shape, vocabSize: vocab };
  }

  get backend() {
    return this.inner.backend;
  }

  newCache(): C {
    return this.inner.newCache();
  }

  warmUp(): Promise<void> {
    return this.inner.warmUp();
  }

  async step(inputs: StepInput<C>[]): Promise<StepOutput[]> {
    const full = this.inner.shape.vocabSize, v = this.shape.vocabSize;
    return (await this.inner.step(inputs)).map(({ logits }, b) => {
      const rows = logits.length / full;
      const out = { logits: new Float32Array(rows * v), probs: new Float32Array(rows * v) };
      for (let r = 0; r < rows; r++) {
        const kept = out.logits.subarray(r * v, (r + 1) * v);
        kept.set(logits.subarray(r * full, r * full + v));
        // Again from the logits: the padded ids may have held most of the inner softmax's mass.
        softmaxInto(kept, out.probs.subarray(r * v, (r + 1) * v), inputs[b].temperature ?? 1);
      }
      return out;
    });
  }
}
