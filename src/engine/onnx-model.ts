// The ONNX decoder behind one onnxruntime-web session: turns "these sequences, these new tokens"
// into one session.run with left padding, and keeps each sequence's KV cache up to date.
import type { InferenceSession, Tensor as OrtTensor } from "onnxruntime-web";
import { KvCache, kvRows, type KvShape } from "./kv-cache.js";

/** The parts of config.json (Hugging Face Llama keys) the engine needs. */
export interface ModelShape extends KvShape {
  vocabSize: number;
  maxLength: number;
}

export function modelShapeFromConfig(config: Record<string, unknown>, source = "config.json"): ModelShape {
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

type TensorCtor = typeof OrtTensor;

export interface StepInput {
  cache: KvCache;
  /** New tokens to feed (a prompt remainder, or the last sampled token). */
  tokens: number[];
  /** Temperature of the returned probabilities (default 1; 0 also gives 1, for greedy rows). */
  temperature?: number;
}

/** Per sequence: logits and softmax(logits / temperature), [positions × vocab] each. */
export interface StepOutput {
  logits: Float32Array;
  probs: Float32Array;
}

/** Which positions' logits a step returns: the last fed token's (sampling) or every fed token's. */
export type LogitsWanted = "last" | "all";

export class OnnxDecoder {
  // The past inputs are rebuilt every step; reusing one buffer keeps a decode step free of large
  // allocations (ORT copies inputs in, so the buffer is free again once run() resolves).
  private scratch = new Float32Array(0);
  private scratchInUse = false;

  constructor(
    private readonly session: InferenceSession,
    private readonly Tensor: TensorCtor,
    readonly shape: ModelShape,
  ) {
    for (const name of ["input_ids", "attention_mask", "position_ids", "logits_to_keep", "temperature", "past_key_values.0.key"]) {
      if (!session.inputNames.includes(name)) {
        throw new Error(`model.onnx lacks input "${name}": re-export the model with this version (npm run export)`);
      }
    }
  }

  newCache(): KvCache {
    return new KvCache(this.shape);
  }

  /**
   * Run a prefill, a second prefill and a batched decode step once, so the code they use is
   * compiled before the first request: V8 compiles WebAssembly lazily, function by function, and
   * ORT's first runs are several times slower than later ones (a 128-token prefill: ~150 ms, then 20).
   */
  async warmUp(): Promise<void> {
    const caches = [this.newCache(), this.newCache()];
    const prompt = Array.from({ length: Math.min(128, this.shape.maxLength - 2) }, (_, i) => i % this.shape.vocabSize);
    await this.step([{ cache: caches[0], tokens: prompt }]);
    await this.step([{ cache: caches[1], tokens: prompt.slice(0, 5) }], "all");
    await this.step(caches.map((cache) => ({ cache, tokens: [1] })));
  }

  /**
   * Feed each sequence its new tokens in one run (rows left-padded to the longest), append the new
   * KV entries to each cache and return, per sequence, logits and probabilities [positions × vocab]
   * for its last fed token ("last") or for every fed token ("all").
   */
  async step(inputs: StepInput[], wanted: LogitsWanted = "last"): Promise<StepOutput[]> {
    const { layers, kvHeads, headDim, vocabSize } = this.shape;
    const batch = inputs.length;
    const past = Math.max(...inputs.map((s) => s.cache.length));
    const seq = Math.max(...inputs.map((s) => s.tokens.length));
    const total = past + seq;
    const keep = wanted === "all" ? seq : 1;
    const ids = new BigInt64Array(batch * seq);
    const mask = new BigInt64Array(batch * total);
    const positions = new BigInt64Array(batch * seq);
    const rowFloats = kvRows(this.shape) * past * headDim; // one sequence's share of the past inputs
    const ownsScratch = !this.scratchInUse;
    let pastData: Float32Array;
    if (ownsScratch) {
      if (this.scratch.length < batch * rowFloats) this.scratch = new Float32Array(batch * rowFloats * 2);
      pastData = this.scratch.subarray(0, batch * rowFloats);
      this.scratchInUse = true;
    } else {
      pastData = new Float32Array(batch * rowFloats);
    }
    inputs.forEach(({ cache, tokens }, b) => {
      const padPast = past - cache.length;
      const padSeq = seq - tokens.length;
      for (let j = padPast; j < past; j++) mask[b * total + j] = 1n;
      tokens.forEach((t, j) => {
        ids[b * seq + padSeq + j] = BigInt(t);
        positions[b * seq + padSeq + j] = BigInt(cache.length + j);
        mask[b * total + past + padSeq + j] = 1n;
      });
      cache.copyInto(pastData, b, batch, past);
    });
    const feeds: Record<string, OrtTensor> = {
      input_ids: new this.Tensor("int64", ids, [batch, seq]),
      attention_mask: new this.Tensor("int64", mask, [batch, total]),
      position_ids: new this.Tensor("int64", positions, [batch, seq]),
      logits_to_keep: new this.Tensor("int64", BigInt64Array.of(BigInt(keep)), [1]),
      temperature: new this.Tensor("float32", Float32Array.from(inputs, (s) => s.temperature || 1), [batch]),
    };
    const block = batch * kvHeads * past * headDim; // one layer's keys (or values) for the batch
    for (let i = 0; i < 2 * layers; i++) {
      const name = `past_key_values.${i >> 1}.${i & 1 ? "value" : "key"}`;
      feeds[name] = new this.Tensor("float32", pastData.subarray(i * block, (i + 1) * block), [batch, kvHeads, past, headDim]);
    }
    try {
      const out = await this.session.run(feeds);
      const newKv = out.new_kv.data as Float32Array;
      const logits = out.logits.data as Float32Array;
      const probs = out.probs.data as Float32Array;
      const result = inputs.map(({ cache, tokens }, b) => {
        const padSeq = seq - tokens.length;
        cache.appendFrom(newKv, b, seq, padSeq, tokens.length);
        const n = wanted === "all" ? tokens.length : 1;
        const end = (b + 1) * keep * vocabSize;
        // Views, not copies: ORT's CPU outputs are plain JS arrays that stay valid after dispose().
        return { logits: logits.subarray(end - n * vocabSize, end), probs: probs.subarray(end - n * vocabSize, end) };
      });
      for (const t of Object.values(out)) t.dispose?.();
      return result;
    } finally {
      if (ownsScratch) this.scratchInUse = false;
    }
  }
}
