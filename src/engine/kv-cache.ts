// One sequence's KV cache: per layer, keys and values as [n_kv_heads, capacity, head_dim] float
// buffers that grow by doubling. Batched runs copy from here into ONNX inputs and only the new
// positions come back, so a decode step never copies the whole cache twice.

export interface KvShape {
  layers: number;
  kvHeads: number;
  headDim: number;
}

export class KvCache {
  length = 0;
  private capacity: number;
  private buffers: Float32Array[]; // 2 per layer: key, value

  constructor(readonly shape: KvShape, capacity = 64) {
    this.capacity = capacity;
    this.buffers = Array.from({ length: 2 * shape.layers }, () => new Float32Array(shape.kvHeads * capacity * shape.headDim));
  }

  private reserve(length: number): void {
    if (length <= this.capacity) return;
    let capacity = this.capacity;
    while (capacity < length) capacity *= 2;
    const { kvHeads, headDim } = this.shape;
    this.buffers = this.buffers.map((old) => {
      const grown = new Float32Array(kvHeads * capacity * headDim);
      for (let h = 0; h < kvHeads; h++) {
        grown.set(old.subarray(h * this.capacity * headDim, (h * this.capacity + this.length) * headDim), h * capacity * headDim);
      }
      return grown;
    });
    this.capacity = capacity;
  }

  /**
   * Append `count` positions taken from a present tensor [batch, kvHeads, total, headDim]:
   * row `row`, positions [from, from + count).
   */
  appendFrom(tensors: Float32Array[], row: number, total: number, from: number, count: number): void {
    this.reserve(this.length + count);
    const { kvHeads, headDim } = this.shape;
    tensors.forEach((src, i) => {
      const dst = this.buffers[i];
      for (let h = 0; h < kvHeads; h++) {
        const s = ((row * kvHeads + h) * total + from) * headDim;
        dst.set(src.subarray(s, s + count * headDim), (h * this.capacity + this.length) * headDim);
      }
    });
    this.length += count;
  }

  /** Copy this cache into a batched past tensor [batch, kvHeads, past, headDim], right-aligned (left padding). */
  copyInto(dsts: Float32Array[], row: number, past: number): void {
    const { kvHeads, headDim } = this.shape;
    const pad = past - this.length;
    this.buffers.forEach((src, i) => {
      for (let h = 0; h < kvHeads; h++) {
        const s = h * this.capacity * headDim;
        dsts[i].set(src.subarray(s, s + this.length * headDim), ((row * kvHeads + h) * past + pad) * headDim);
      }
    });
  }

  /** A new cache holding the first `length` positions of this one (shared prompt prefixes). */
  prefix(length: number): KvCache {
    const copy = new KvCache(this.shape, Math.max(64, length));
    const { kvHeads, headDim } = this.shape;
    this.buffers.forEach((src, i) => {
      for (let h = 0; h < kvHeads; h++) {
        copy.buffers[i].set(src.subarray(h * this.capacity * headDim, (h * this.capacity + length) * headDim), h * copy.capacity * headDim);
      }
    });
    copy.length = length;
    return copy;
  }

  get bytes(): number {
    return this.buffers.reduce((s, b) => s + b.byteLength, 0);
  }
}
