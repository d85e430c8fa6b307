// Cloudflare Workers host with onnxruntime-web, the fallback backend for graphs our kernels do not
// run (wrangler.toml). The host itself is worker-host.ts; worker-simd.ts is the build without ORT.
// Workers cannot compile WebAssembly from bytes and ORT has no hook for a precompiled module, so it
// gets one through a WebAssembly.instantiate shim (below).
import * as ort from "onnxruntime-web/wasm";
// wrangler turns a .wasm import into a precompiled WebAssembly.Module (Workers forbid compiling bytes).
import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm";
import { workerHost } from "./worker-host.js";

// Workers have no threads: one WASM thread, no proxy worker.
ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
ort.env.logLevel = "error";

/** ORT has no instantiateWasm hook: give it a placeholder binary and swap in the imported module. */
async function withPrecompiledWasm<T>(create: () => Promise<T>): Promise<T> {
  const placeholder = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
  ort.env.wasm.wasmBinary = placeholder;
  const original = WebAssembly.instantiate;
  WebAssembly.instantiate = (async (source: unknown, imports?: WebAssembly.Imports) => {
    if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
      const instance = await original(ortWasm as WebAssembly.Module, imports);
      return { instance, module: ortWasm };
    }
    return original(source as WebAssembly.Module, imports);
  }) as typeof WebAssembly.instantiate;
  try {
    return await create();
  } finally {
    WebAssembly.instantiate = original;
  }
}

export default workerHost({ ort, around: withPrecompiledWasm });
