// One sequence's KV cache, laid out like the graph's past_kv row: [2·layers·kvHeads, capacity,
// headDim] (layer i's key heads, then its value heads), grown by doubling. A step copies the cache
// into the batched past_kv input and appends only the new positions (new_kv) back.

export interface KvShape {
  layers: number;
  kvHeads: number;
  headDim: number;
}

/** Rows of the packed KV tensors: a key and a value row per KV head per layer. */
export const kvRows = (s: KvShape): number => 2 * s.layers * s.kvHeads;

export class KvCache {
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
    this.copyRows(grown, 0, capacity, this.length);
    this.data = grown;
    this.capacity = capacity;
  }

  /** Copy the first `count` positions of every row into dst rows of `stride` positions, starting at `offset` floats. */
  private copyRows(dst: Float32Array, offset: number, stride: number, count: number, pad = 0): void {
    const hd = this.shape.headDim;
    for (let r = 0, rows = kvRows(this.shape); r < rows; r++) {
      const s = r * this.capacity * hd;
      dst.set(this.data.subarray(s, s + count * hd), offset + (r * stride + pad) * hd);
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

  /** Copy this cache into batch row `row` of a past_kv tensor [batch, rows, past, headDim], right-aligned (left padding). */
  copyInto(pastKv: Float32Array, row: number, past: number): void {
    this.copyRows(pastKv, row * kvRows(this.shape) * past * this.shape.headDim, past, this.length, past - this.length);
  }

  /** A new cache holding the first `length` positions of this one (shared prompt prefixes). */
  prefix(length: number): KvCache {
    const copy = new KvCache(this.shape, Math.max(64, length));
    this.copyRows(copy.data, 0, copy.capacity, length);
    copy.length = length;
    return copy;
  }

  get bytes(): number {
    return this.data.byteLength;
  }
}
