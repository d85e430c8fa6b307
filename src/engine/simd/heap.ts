// The kernels' linear memory, managed from JS: a bump allocator for what lives as long as the model
// (weights, the Model struct, scratch) and a free list of fixed-size KV pages on top of it.
// WebAssembly memory never shrinks, so freed pages are reused rather than returned.

const WASM_PAGE = 65536;

export class Heap {
  private end: number;

  constructor(readonly memory: WebAssembly.Memory, base: number) {
    this.end = base;
  }

  /** `bytes` bytes aligned to 16 (SIMD loads), zeroed (fresh memory is zero and is never reused here). */
  alloc(bytes: number): number {
    const at = Math.ceil(this.end / 16) * 16;
    this.end = at + bytes;
    const missing = this.end - this.memory.buffer.byteLength;
    if (missing > 0) this.memory.grow(Math.ceil(missing / WASM_PAGE));
    return at;
  }

  /** The first address not yet handed out. */
  get top(): number {
    return this.end;
  }

  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  // Views are made per use: growing the memory detaches the old ArrayBuffer.
  i32(at: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, at, length);
  }

  f32(at: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, length);
  }

  u8(at: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, at, length);
  }
}

/** KV pages of one size; a sequence's cache is a list of them (see kernels/attention.c for the layout). */
export class PagePool {
  private readonly free: number[] = [];
  inUse = 0;

  constructor(private readonly heap: Heap, readonly pageBytes: number) {}

  take(): number {
    this.inUse++;
    return this.free.pop() ?? this.heap.alloc(this.pageBytes);
  }

  give(pages: number[]): void {
    this.inUse -= pages.length;
    this.free.push(...pages);
  }

  copy(to: number, from: number): void {
    const bytes = new Uint8Array(this.heap.memory.buffer);
    bytes.copyWithin(to, from, from + this.pageBytes);
  }
}

/**
 * A tensor whose bytes arrive after the decoder has reserved its place: a pack read one part at a
 * time (src/packed.ts) is copied straight into the kernels' memory, so the whole file never sits in
 * JS memory beside the heap (on Workers both count against the isolate's 128 MB).
 */
export class PendingTensor {
  private memory: WebAssembly.Memory | null = null;
  private address = 0;
  /** Bytes copied in so far. */
  written = 0;

  constructor(readonly byteLength: number) {}

  place(memory: WebAssembly.Memory, address: number): void {
    this.memory = memory;
    this.address = address;
  }

  /** Copies `bytes` to the tensor's bytes from `offset` on. */
  write(offset: number, bytes: Uint8Array): void {
    if (!this.memory) throw new Error("a pending tensor written before the decoder placed it");
    if (offset < 0 || offset + bytes.byteLength > this.byteLength) throw new Error(`${bytes.byteLength} bytes at ${offset} overrun a tensor of ${this.byteLength}`);
    new Uint8Array(this.memory.buffer, this.address + offset, bytes.byteLength).set(bytes); // a view per write: the memory may have grown since
    this.written += bytes.byteLength;
  }
}

/** A weights tree (LlamaWeights) whose tensors may be PendingTensor. */
export type Placeable<T> = T extends ArrayBufferView ? T | PendingTensor
  : T extends readonly (infer U)[] ? Placeable<U>[]
  : T extends object ? { [K in keyof T]: Placeable<T[K]> }
  : T;
