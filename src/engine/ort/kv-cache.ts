// One sequence's KV cache as rows [2·layers·kvHeads, capacity, headDim] (layer i's key heads, then
// its value heads, as in the graph's new_kv output), grown by doubling. The decoder copies it into
// the batched past_key_values inputs and appends only the new positions (new_kv) back.
import type { KvShape } from "../decoder.js";

/** Rows of the packed KV tensors: a key and a value row per KV head per layer. */
export const kvRows = (s: KvShape): number => 2 * s.layers * s.kvHeads;

export class KvCache {
  // JS memory (a Float32Array), not a WASM heap: the garbage collector frees it (release() is for backends with their own heap).
  length = 0;
  private capacity: number;
  private data: Float32Array;

  constructor(readonly shape: KvShape, capacity = 64) {
    this.capacity = capacity;
    this.data = new Float32Array(kvRows(shape) * capacity * shape.headDim);
  }

  private reserve(length: number): void {
    if (length <= this.capacity) return;
    let capacity = this.capacity;
    while (capacity < length) capacity *= 2;
    const grown = new Float32Array(kvRows(this.shape) * capacity * this.shape.headDim);
    this.copyRows(grown, (r) => r * capacity * this.shape.headDim, this.length);
    this.data = grown;
    this.capacity = capacity;
  }

  /** Copy positions [from, to) of every row r to dst at offset(r) + the same positions. */
  private copyRows(dst: Float32Array, offset: (row: number) => number, to: number, from = 0): void {
    const hd = this.shape.headDim;
    for (let r = 0, rows = kvRows(this.shape); r < rows; r++) {
      const s = r * this.capacity * hd;
      dst.set(this.data.subarray(s + from * hd, s + to * hd), offset(r) + from * hd);
    }
  }

  /**
   * Append `count` positions from a new_kv tensor [batch, rows, seq, headDim]: batch row `row`,
   * positions [from, from + count).
   */
  appendFrom(newKv: Float32Array, row: number, seq: number, from: number, count: number): void {
    this.reserve(this.length + count);
    const hd = this.shape.headDim;
    const rows = kvRows(this.shape);
    for (let r = 0; r < rows; r++) {
      const s = ((row * rows + r) * seq + from) * hd;
      this.data.set(newKv.subarray(s, s + count * hd), (r * this.capacity + this.length) * hd);
    }
    this.length += count;
  }

  /**
   * Copy positions [from, length) into batch row `row` of the past inputs, at the same positions
   * (left-aligned; the rest of the window is masked). `past` is laid out [2·layers, batch, kvHeads,
   * window, headDim]: one [batch, kvHeads, window, headDim] block per layer's keys or values, each a
   * past_key_values.{i}.key/value input.
   */
  copyInto(past: Float32Array, row: number, batch: number, window: number, from = 0): void {
    const { kvHeads, headDim } = this.shape;
    const offset = (r: number) => ((Math.floor(r / kvHeads) * batch + row) * kvHeads + (r % kvHeads)) * window * headDim;
    this.copyRows(past, offset, this.length, from);
  }

  release(): void {
    this.length = 0;
  }

  /** A new cache holding the first `length` positions of this one (shared prompt prefixes). */
  prefix(length: number): KvCache {
    const copy = new KvCache(this.shape, Math.max(64, length));
    this.copyRows(copy.data, (r) => r * copy.capacity * this.shape.headDim, length);
    copy.length = length;
    return copy;
  }
}
