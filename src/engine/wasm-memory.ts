// Neither onnxruntime-web nor our kernels' module exposes a heap gauge of its own: remember every
// WebAssembly.Memory created so /metrics can report the heap (it never shrinks, and Workers allow
// 128 MB per isolate). Hosts call trackWasmMemories once at start-up, before any module is instantiated.
const memories: WebAssembly.Memory[] = [];

export function trackWasmMemories(): void {
  const Native = WebAssembly.Memory as typeof WebAssembly.Memory & { tracked?: boolean };
  if (Native.tracked) return;
  const Tracked = function (this: unknown, descriptor: WebAssembly.MemoryDescriptor) {
    const memory = new Native(descriptor);
    memories.push(memory);
    return memory;
  } as unknown as typeof WebAssembly.Memory & { tracked?: boolean };
  Tracked.prototype = Native.prototype;
  Tracked.tracked = true;
  (WebAssembly as { Memory: typeof WebAssembly.Memory }).Memory = Tracked;
}

/** Bytes of the largest WebAssembly memory created so far (the ORT heap once a session exists). */
export function wasmHeapBytes(): number {
  return Math.max(0, ...memories.map((m) => m.buffer.byteLength));
}
