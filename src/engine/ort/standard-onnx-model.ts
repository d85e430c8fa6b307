// A decoder graph in the standard contract (Optimum's exports, transformers.js, most ONNX decoders on
// the Hugging Face Hub) behind one onnxruntime-web session: inputs input_ids, attention_mask,
// optional position_ids and past_key_values.{i}.key/value (float32 or float16); outputs logits for
// every fed position and present.{i}.key/value, the whole cache again. That contract costs more per
// step than ours (onnx-model.ts): the full cache goes into and comes back out of WASM memory on
// every run, and a prefill computes logits for every prompt position.
import type { InferenceSession, Tensor as OrtTensor } from "onnxruntime-web";
import { runEachPathOnce, stepInGroups, type Decoder, type LogitsWanted, type ModelShape, type StepInput, type StepOutput } from "../decoder.js";
import { KvCache, kvRows } from "./kv-cache.js";
import { softmaxInto } from "../sampler.js";

type TensorCtor = typeof OrtTensor;
type KvType = "float32" | "float16";

export class StandardOnnxDecoder implements Decoder<KvCache> {
  readonly backend = "ort";
  private readonly kvType: KvType;
  private readonly positionIds: boolean;

  constructor(
    private readonly session: InferenceSession,
    private readonly Tensor: TensorCtor,
    readonly shape: ModelShape,
    source: string,
  ) {
    // The inputs a graph in the standard contract must have (position_ids is optional).
    const required = ["input_ids", "attention_mask", ...Array.from({ length: shape.layers }, (_, i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]).flat()];
    const missing = required.filter((n) => !session.inputNames.includes(n));
    if (missing.length) throw new Error(`${source}: the graph lacks input "${missing[0]}" (config.json has ${shape.layers} layers)`);
    for (const out of ["logits", "present.0.key"]) {
      if (!session.outputNames.includes(out)) throw new Error(`${source}: the graph lacks output "${out}"`);
    }
    const extra = session.inputNames.filter((n) => !n.startsWith("past_key_values.") && !["input_ids", "attention_mask", "position_ids"].includes(n));
    if (extra.length) throw new Error(`${source}: the graph has input "${extra[0]}", which the standard decoder contract does not`);
    const past = session.inputMetadata?.find((m) => m.name === "past_key_values.0.key");
    const type = past && past.isTensor ? past.type : "float32";
    if (type !== "float32" && type !== "float16") throw new Error(`${source}: past_key_values are ${type}; float32 and float16 are supported`);
    this.kvType = type;
    this.positionIds = session.inputNames.includes("position_ids");
  }

  newCache(): KvCache {
    return new KvCache(this.shape);
  }

  warmUp(): Promise<void> {
    return runEachPathOnce(this);
  }

  /**
   * Sequences with the same cached length and the same number of new tokens run together, the rest
   * alone: without padding the graph needs no assumption about how it derives positions or masks.
   */
  step(inputs: StepInput<KvCache>[]): Promise<StepOutput[]> {
    return stepInGroups(inputs, (group, wanted) => this.stepGroup(group, wanted));
  }

  private async stepGroup(inputs: StepInput<KvCache>[], wanted: LogitsWanted): Promise<StepOutput[]> {
    const groups = new Map<string, number[]>();
    inputs.forEach(({ cache, tokens }, b) => {
      const key = `${cache.length}:${tokens.length}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push(b);
    });
    const results: StepOutput[] = new Array(inputs.length);
    for (const rows of groups.values()) {
      let group = rows.map((b) => inputs[b]);
      // The graph returns logits for every fed position: feed a long prompt in slices so that a run's
      // logits stay within ~4 MiB of WASM memory (the heap never shrinks; Workers allow 128 MB).
      const slice = wanted === "last" ? Math.max(8, Math.floor(2 ** 20 / this.shape.vocabSize)) : Infinity;
      while (group[0].tokens.length > slice) {
        await this.run(group.map((s) => ({ ...s, tokens: s.tokens.slice(0, slice) })), "last");
        group = group.map((s) => ({ ...s, tokens: s.tokens.slice(slice) }));
      }
      const outs = await this.run(group, wanted);
      rows.forEach((b, j) => (results[b] = outs[j]));
    }
    return results;
  }

  private async run(inputs: StepInput<KvCache>[], wanted: LogitsWanted): Promise<StepOutput[]> {
    const { layers, kvHeads, headDim, vocabSize } = this.shape;
    const batch = inputs.length;
    const past = inputs[0].cache.length;
    const seq = inputs[0].tokens.length;
    const ids = new BigInt64Array(batch * seq);
    const positions = new BigInt64Array(batch * seq);
    inputs.forEach(({ tokens }, b) => tokens.forEach((t, j) => {
      ids[b * seq + j] = BigInt(t);
      positions[b * seq + j] = BigInt(past + j);
    }));
    const feeds: Record<string, OrtTensor> = {
      input_ids: new this.Tensor("int64", ids, [batch, seq]),
      attention_mask: new this.Tensor("int64", new BigInt64Array(batch * (past + seq)).fill(1n), [batch, past + seq]),
    };
    if (this.positionIds) feeds.position_ids = new this.Tensor("int64", positions, [batch, seq]);
    const pastData = new Float32Array(batch * kvRows(this.shape) * past * headDim);
    inputs.forEach(({ cache }, b) => cache.copyInto(pastData, b, batch, past));
    const block = batch * kvHeads * past * headDim;
    for (let i = 0; i < 2 * layers; i++) {
      const name = `past_key_values.${i >> 1}.${i & 1 ? "value" : "key"}`;
      feeds[name] = this.kvTensor(pastData.subarray(i * block, (i + 1) * block), [batch, kvHeads, past, headDim]);
    }
    const out = await this.session.run(feeds);
    try {
      // The new positions of every present.{i}, packed as our caches append them: [batch, rows, seq, headDim].
      const rows = kvRows(this.shape);
      const fresh = new Float32Array(batch * rows * seq * headDim);
      for (let i = 0; i < 2 * layers; i++) {
        const present = toFloat32(out[`present.${i >> 1}.${i & 1 ? "value" : "key"}`].data as Float32Array | Uint16Array);
        for (let b = 0; b < batch; b++) {
          for (let h = 0; h < kvHeads; h++) {
            const from = ((b * kvHeads + h) * (past + seq) + past) * headDim;
            const r = (i >> 1) * 2 * kvHeads + (i & 1) * kvHeads + h;
            fresh.set(present.subarray(from, from + seq * headDim), ((b * rows + r) * seq) * headDim);
          }
        }
      }
      const logits = toFloat32(out.logits.data as Float32Array | Uint16Array);
      const kept = logits.length / (batch * vocabSize); // seq, or 1 for graphs that keep only the last
      const n = wanted === "all" ? seq : 1;
      if (n > kept) throw new Error(`the graph returned logits for ${kept} position(s), ${n} wanted`);
      return inputs.map(({ cache, temperature }, b) => {
        cache.appendFrom(fresh, b, seq, 0, seq);
        const end = (b + 1) * kept * vocabSize;
        const rowLogits = logits.slice(end - n * vocabSize, end);
        const probs = new Float32Array(rowLogits.length);
        for (let p = 0; p < n; p++) softmaxInto(rowLogits.subarray(p * vocabSize, (p + 1) * vocabSize), probs.subarray(p * vocabSize, (p + 1) * vocabSize), temperature ?? 1);
        return { logits: rowLogits, probs };
      });
    } finally {
      for (const t of Object.values(out)) t.dispose?.();
    }
  }

  private kvTensor(data: Float32Array, dims: number[]): OrtTensor {
    return this.kvType === "float16" ? new this.Tensor("float16", toFloat16(data), dims) : new this.Tensor("float32", data, dims);
  }
}

// IEEE half precision by bit manipulation: Node 20 and workerd have no Float16Array.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp >= 31) return sign | (((x >>> 23) & 0xff) === 0xff && mant ? 0x7e00 : 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return sign;
    const m = (mant | 0x800000) >> (1 - exp);
    return sign | ((m + 0x1000) >> 13); // round half up
  }
  const h = sign | (exp << 10) | (mant >> 13);
  return h + ((mant & 0x1fff) > 0x1000 || ((mant & 0x1fff) === 0x1000 && h & 1) ? 1 : 0); // round to nearest even
}

function toFloat32(data: Float32Array | Uint16Array): Float32Array {
  if (data instanceof Float32Array) return data;
  if (!(data instanceof Uint16Array)) return Float32Array.from(data as ArrayLike<number>); // a Float16Array, where the runtime has one
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = halfToFloat(data[i]);
  return out;
}

function toFloat16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = floatToHalf(data[i]);
  return out;
}
