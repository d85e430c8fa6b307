// One engine benchmark row per process (onnxruntime-web fixes its thread count at initialisation):
//   tsx bench/engine-cli.ts simd|web|native <model-dir> <onnx-file> <threads> <runs>
//   tsx bench/engine-cli.ts profile <model-dir> <onnx-file> <context> <steps> [f32|int8]   (our kernels' per-stage split, KV cache)
//   tsx bench/engine-cli.ts profile-gguf <file.gguf> <8|7|4> <context> <steps>   (the same for a GGUF file at WEIGHT_BITS, f32 KV cache)
//   tsx bench/engine-cli.ts constrained <model-dir> <runs>   (JSON mode's cost per token)
//   tsx bench/engine-cli.ts matmul <runs>      (the wasm build's fp32 MatMul GFLOP/s, for the roofline)
//   tsx bench/engine-cli.ts gguf <file.gguf> <runs> <long-context> <8|7|4> [threads]   (our kernels at the llama.cpp side-by-side's rows, WEIGHT_BITS; 1 or 2 threads)
import { benchEngine, benchGguf, constrainedCost, profileGguf, profileSimd, runtimeInfo, wasmHeapBytes, wasmMatMulGflops, type EngineName } from "./engine.js";
import { trackWasmMemories } from "../src/engine/wasm-memory.js";
import type { WeightBits } from "../src/engine/simd/llama-weights.js";

trackWasmMemories();

if (process.argv[2] === "constrained") {
  console.log(JSON.stringify(await constrainedCost(process.argv[3], Number(process.argv[4]))));
} else if (process.argv[2] === "profile") {
  const [modelDir, file, context, steps, kv = "f32"] = process.argv.slice(3);
  if (kv !== "f32" && kv !== "int8") throw new Error(`KV cache must be f32 or int8, not ${kv}`);
  console.log(JSON.stringify(await profileSimd(modelDir, file, Number(context), Number(steps), kv)));
} else if (process.argv[2] === "profile-gguf") {
  const [file, bits, context, steps] = process.argv.slice(3);
  if (bits !== "8" && bits !== "7" && bits !== "4") throw new Error(`weight bits must be 8, 7 or 4, not ${bits}`);
  console.log(JSON.stringify(await profileGguf(file, Number(bits) as WeightBits, Number(context), Number(steps))));
} else if (process.argv[2] === "gguf") {
  const [file, runs, longContext, bits, threads = "1"] = process.argv.slice(3);
  if (bits !== "8" && bits !== "7" && bits !== "4") throw new Error(`weight bits must be 8, 7 or 4, not ${bits}`);
  console.log(JSON.stringify({ ...(await benchGguf(file, Number(runs), Number(longContext), Number(bits) as WeightBits, Number(threads))), ...runtimeInfo() }));
} else if (process.argv[2] === "matmul") {
  console.log(JSON.stringify({ wasm_matmul_gflops: await wasmMatMulGflops(Number(process.argv[3])) }));
} else {
  const [engine, modelDir, file, threads, runs] = process.argv.slice(2);
  let peakRss = process.memoryUsage().rss;
  const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
  const row = await benchEngine(engine as EngineName, modelDir, file, Number(threads), Number(runs));
  clearInterval(timer);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  console.log(JSON.stringify({ ...row, ...runtimeInfo(), peak_rss_mb: peakRss / 2 ** 20, wasm_heap_mb: engine !== "native" ? wasmHeapBytes() / 2 ** 20 : null }));
}
