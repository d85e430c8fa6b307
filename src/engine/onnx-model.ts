// The ONNX decoder behind one onnxruntime-web session: turns "these sequences, these new tokens"
// into one session.run with left padding, and keeps each sequence's KV cache up to date.
import type { InferenceSession, Tensor as OrtTensor } from "onnxruntime-web";
import { KvCache, type KvShape } from "./kv-cache.js";

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
}

export class OnnxDecoder {
  constructor(
    private readonly session: InferenceSession,
    private readonly Tensor: TensorCtor,
    readonly shape: ModelShape,
  ) {
    const expected = ["input_ids", "attention_mask", "position_ids", "past_key_values.0.key"];
    for (const name of expected) {
      if (!session.inputNames.includes(name)) throw new Error(`model.onnx lacks input "${name}"`);
    }
  }

  newCache(): KvCache {
    return new KvCache(this.shape);
  }

  /**
   * Feed each sequence its new tokens in one run (rows left-padded to the longest); append the new
   * KV entries to each cache and return, per sequence, logits for every fed position [n × vocab].
   */
  async step(inputs: StepInput[]): Promise<Float32Array[]> {
    const { layers, kvHeads, headDim, vocabSize } = this.shape;
    const batch = inputs.length;
    const past = Math.max(...inputs.map((s) => s.cache.length));
    const seq = Math.max(...inputs.map((s) => s.tokens.length));
    const total = past + seq;
    const ids = new BigInt64Array(batch * seq);
    const mask = new BigInt64Array(batch * total);
    const positions = new BigInt64Array(batch * seq);
    const pastBuffers = Array.from({ length: 2 * layers }, () => new Float32Array(batch * kvHeads * past * headDim));
    inputs.forEach(({ cache, tokens }, b) => {
      const padPast = past - cache.length;
      const padSeq = seq - tokens.length;
      for (let j = cache.length ? padPast : past; j < past; j++) mask[b * total + j] = 1n;
      tokens.forEach((t, j) => {
        ids[b * seq + padSeq + j] = BigInt(t);
        positions[b * seq + padSeq + j] = BigInt(cache.length + j);
        mask[b * total + past + padSeq + j] = 1n;
      });
      if (cache.length) cache.copyInto(pastBuffers, b, past);
    });
    const feeds: Record<string, OrtTensor> = {
      input_ids: new this.Tensor("int64", ids, [batch, seq]),
      attention_mask: new this.Tensor("int64", mask, [batch, total]),
      position_ids: new this.Tensor("int64", positions, [batch, seq]),
    };
    for (let i = 0; i < layers; i++) {
      feeds[`past_key_values.${i}.key`] = new this.Tensor("float32", pastBuffers[2 * i], [batch, kvHeads, past, headDim]);
      feeds[`past_key_values.${i}.value`] = new this.Tensor("float32", pastBuffers[2 * i + 1], [batch, kvHeads, past, headDim]);
    }
    const out = await this.session.run(feeds);
    const presents: Float32Array[] = [];
    for (let i = 0; i < layers; i++) {
      presents.push(out[`present.${i}.key`].data as Float32Array, out[`present.${i}.value`].data as Float32Array);
    }
    const logits = out.logits.data as Float32Array;
    const result = inputs.map(({ cache, tokens }, b) => {
      const padSeq = seq - tokens.length;
      cache.appendFrom(presents, b, total, past + padSeq, tokens.length);
      const start = (b * seq + padSeq) * vocabSize;
      // A view, not a copy: a 512-token prefill's logits are 16 MB, and ORT's CPU outputs are plain
      // JS arrays that stay valid after dispose().
      return logits.subarray(start, start + tokens.length * vocabSize);
    });
    for (const t of Object.values(out)) t.dispose?.();
    return result;
  }
}
