// The ONNX decoder behind one onnxruntime-web session: turns "these sequences, these new tokens"
// into one session.run (padding masked), and keeps each sequence's KV cache up to date.
import type { InferenceSession, Tensor as OrtTensor } from "onnxruntime-web";
import { runEachPathOnce, stepInGroups, type Decoder, type LogitsWanted, type ModelShape, type StepInput, type StepOutput } from "../decoder.js";
import { KvCache, kvRows } from "./kv-cache.js";

type TensorCtor = typeof OrtTensor;

/** Positions of past the inputs are padded to, so a batch keeps one layout for this many steps. */
const WINDOW_STEP = 32;

export class OnnxDecoder implements Decoder<KvCache> {
  readonly backend = "ort";
  // The batched past inputs persist between steps. Each sequence's cache is left-aligned in a window
  // rounded up to WINDOW_STEP positions (the tail is masked out of attention), so while the batch
  // stays the same a decode step writes only each sequence's new positions instead of copying every
  // cache again; a new batch, or a window outgrown, rebuilds it. ORT copies inputs in at the start
  // of run(), so the buffer may be written again once run() resolves.
  private past = { data: new Float32Array(0), window: 0, caches: [] as KvCache[], lengths: [] as number[] };
  private pastInUse = false;

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

  warmUp(): Promise<void> {
    return runEachPathOnce(this);
  }

  /**
   * Feed each sequence its new tokens in one run (new tokens right-aligned, caches left-aligned in
   * the past window, padding masked), append the new KV entries to each cache and return, per
   * sequence, logits and probabilities [positions × vocab] for its last fed token ("last") or for
   * every fed token ("all").
   */
  step(inputs: StepInput<KvCache>[]): Promise<StepOutput[]> {
    return stepInGroups(inputs, (group, wanted) => this.run(group, wanted));
  }

  private async run(inputs: StepInput<KvCache>[], wanted: LogitsWanted): Promise<StepOutput[]> {
    const { layers, kvHeads, headDim } = this.shape;
    const batch = inputs.length;
    const seq = Math.max(...inputs.map((s) => s.tokens.length));
    const keep = wanted === "all" ? seq : 1;
    const owner = !this.pastInUse; // concurrent steps (never from the engine) get a buffer of their own
    this.pastInUse ||= owner;
    const past = owner ? this.pastFor(inputs) : this.freshPast(inputs);
    const window = past.window;
    const total = window + seq;
    const ids = new BigInt64Array(batch * seq);
    const mask = new BigInt64Array(batch * total);
    const positions = new BigInt64Array(batch * seq);
    inputs.forEach(({ cache, tokens }, b) => {
      const padSeq = seq - tokens.length; // new tokens are right-aligned, so every row's last is last
      for (let j = 0; j < cache.length; j++) mask[b * total + j] = 1n;
      tokens.forEach((t, j) => {
        ids[b * seq + padSeq + j] = BigInt(t);
        positions[b * seq + padSeq + j] = BigInt(cache.length + j);
        mask[b * total + window + padSeq + j] = 1n;
      });
    });
    const feeds: Record<string, OrtTensor> = {
      input_ids: new this.Tensor("int64", ids, [batch, seq]),
      attention_mask: new this.Tensor("int64", mask, [batch, total]),
      position_ids: new this.Tensor("int64", positions, [batch, seq]),
      logits_to_keep: new this.Tensor("int64", BigInt64Array.of(BigInt(keep)), [1]),
      temperature: new this.Tensor("float32", Float32Array.from(inputs, (s) => s.temperature ?? 1), [batch]),
    };
    const block = batch * kvHeads * window * headDim; // one layer's keys (or values) for the batch
    for (let i = 0; i < 2 * layers; i++) {
      const name = `past_key_values.${i >> 1}.${i & 1 ? "value" : "key"}`;
      feeds[name] = new this.Tensor("float32", past.data.subarray(i * block, (i + 1) * block), [batch, kvHeads, window, headDim]);
    }
    try {
      const out = await this.session.run(feeds);
      const newKv = out.new_kv.data as Float32Array;
      const logits = out.logits.data as Float32Array;
      const probs = out.probs.data as Float32Array;
      const { vocabSize } = this.shape;
      const result = inputs.map(({ cache, tokens }, b) => {
        const padSeq = seq - tokens.length;
        const before = cache.length;
        cache.appendFrom(newKv, b, seq, padSeq, tokens.length);
        if (owner && cache.length <= window) cache.copyInto(past.data, b, batch, window, before); // ready for the next step
        if (owner) past.lengths[b] = cache.length;
        const n = wanted === "all" ? tokens.length : 1;
        const end = (b + 1) * keep * vocabSize;
        // Views, not copies: ORT's CPU outputs are plain JS arrays that stay valid after dispose().
        return { logits: logits.subarray(end - n * vocabSize, end), probs: probs.subarray(end - n * vocabSize, end) };
      });
      for (const t of Object.values(out)) t.dispose?.();
      return result;
    } finally {
      if (owner) this.pastInUse = false;
    }
  }

  /** The persistent past inputs for this batch: reused when the batch is the one of the last step. */
  private pastFor(inputs: StepInput<KvCache>[]) {
    const p = this.past;
    const same = p.caches.length === inputs.length &&
      inputs.every(({ cache }, b) => cache === p.caches[b] && cache.length === p.lengths[b] && cache.length <= p.window);
    if (same) return p;
    const window = Math.ceil(Math.max(...inputs.map((s) => s.cache.length)) / WINDOW_STEP) * WINDOW_STEP;
    const size = inputs.length * kvRows(this.shape) * window * this.shape.headDim;
    // Grown with room to spare; given back once a batch needs far less (a long prompt's window
    // would otherwise stay allocated for good).
    if (p.data.length < size || p.data.length > 4 * size + 65536) p.data = new Float32Array(size * 2);
    p.data.fill(0, 0, size);
    p.window = window;
    p.caches = inputs.map((s) => s.cache);
    p.lengths = inputs.map(({ cache }, b) => (cache.copyInto(p.data, b, inputs.length, window), cache.length));
    return p;
  }

  private freshPast(inputs: StepInput<KvCache>[]) {
    const window = Math.max(...inputs.map((s) => s.cache.length));
    const data = new Float32Array(inputs.length * kvRows(this.shape) * window * this.shape.headDim);
    inputs.forEach(({ cache }, b) => cache.copyInto(data, b, inputs.length, window));
    return { data, window, caches: [], lengths: [] };
  }
}
