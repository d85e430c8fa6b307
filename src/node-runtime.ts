// WebAssembly in a Node process (the Node host, the bench, the parity check, the tests): V8's flag
// for our kernels and onnxruntime-web, and onnxruntime-web's Node build, which can start worker
// threads when threads > 1 (the "onnxruntime-web/wasm" bundle cannot in Node), reading the same .wasm
// as every host from node_modules. Not under hosts/: it is shared by everything that runs in Node.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import v8 from "node:v8";
import * as ort from "onnxruntime-web";

let threadsInUse: number | null = null;

export function nodeOrt(threads = 1): typeof ort {
  if (threadsInUse === null) {
    // V8 first runs WebAssembly on its baseline compiler (Liftoff) and optimizes hot functions later;
    // ORT's kernels then need dozens of runs to reach full speed. Optimize on first use instead (the
    // hosts' warm-up pays for it once, ~4 s). Must be set before ORT compiles its .wasm.
    v8.setFlagsFromString("--no-liftoff");
    // No flag for relaxed SIMD: it is on by default since V8 11.4 (Node ≥ 22, Deno, workerd). Under
    // an older Node relaxed.wasm does not validate and the plain kernels run (engines says ≥ 22).
    ort.env.wasm.wasmBinary = readFileSync(createRequire(import.meta.url).resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm"));
    ort.env.wasm.numThreads = threads;
    ort.env.logLevel = "error";
    threadsInUse = threads;
  } else if (threads !== threadsInUse) {
    throw new Error(`onnxruntime-web already runs with ${threadsInUse} thread(s) in this process; the count is fixed at initialisation`);
  }
  return ort;
}
