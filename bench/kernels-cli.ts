// Kernel-level measurements of our WASM SIMD kernels, for A/B comparisons run one process per arm
// (interleaved by the caller) or under `valgrind --tool=callgrind` (instruction counts: run two step
// counts and take the difference, so start-up and compilation cancel out).
//   tsx bench/kernels-cli.ts decode <model-dir> <onnx-file> <f32|int8 KV> <q7|q8|q8_32|q4_32> <relaxed|plain> <prompt> <steps> [rounds]
//     ms per decoded token after a prompt of `prompt` positions (weights other than q7: the graph's
//     7-bit weights quantized again to that kind); `rounds` times from a copy of the prompt's cache,
//     so that decoding dominates the process (for whole-process CPU-time A/B runs)
//   tsx bench/kernels-cli.ts gemm <q7|q8|q8_32|q4_32> <relaxed|plain> <rows out> <cols in> <activation rows> <calls>
//     µs per matrix product (random weights; speed depends on shape and kind only)
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { KernelMatmul, SimdDecoder, type KvCacheKind } from "../src/engine/simd/decoder.js";
import { llamaWeights, type LlamaWeights } from "../src/engine/simd/llama-weights.js";
import { readOnnx } from "../src/engine/simd/onnx-reader.js";
import { dequantizeMatrix, quantizeMatrix, type MatrixKind, type QuantMatrix } from "../src/engine/simd/quantize.js";
import v8 from "node:v8";
import { argmax } from "../src/engine/sampler.js";

// The Node host's V8 flags (src/node-runtime.ts), without loading onnxruntime-web: a light process,
// so that start-up stays a small share of an instruction count.
v8.setFlagsFromString("--no-liftoff");
// KERNELS_WASM / RELAXED_WASM: another build of either module, for A/B runs of a kernel change.
const KERNELS_WASM = process.env.KERNELS_WASM ?? join(import.meta.dirname, "../src/engine/simd/kernels.wasm");
const RELAXED_WASM = process.env.RELAXED_WASM ?? join(import.meta.dirname, "../src/engine/simd/relaxed.wasm");
const kernels = await WebAssembly.compile(readFileSync(KERNELS_WASM));
const relaxedModule = (variant: string) => (variant === "relaxed" ? WebAssembly.compile(readFileSync(RELAXED_WASM)) : Promise.resolve(null));

function requantized(w: LlamaWeights, kind: MatrixKind): LlamaWeights {
  if (kind === "q7") return w;
  const q = (m: QuantMatrix) => quantizeMatrix(dequantizeMatrix(m), m.rows, m.cols, kind);
  return { ...w, embedding: q(w.embedding), layers: w.layers.map((l) => ({ ...l, qkv: q(l.qkv), o: q(l.o), gateUp: q(l.gateUp), down: q(l.down) })) };
}

const [what, ...args] = process.argv.slice(2);
if (what === "decode") {
  const [modelDir, file, kv, kind, variant, promptLength, steps] = args;
  const config = JSON.parse(readFileSync(join(modelDir, "config.json"), "utf8"));
  const weights = requantized(llamaWeights(readOnnx(readFileSync(join(modelDir, file))), config), kind as MatrixKind);
  const dec = await SimdDecoder.create(kernels, weights, await relaxedModule(variant), {}, kv as KvCacheKind);
  const prompt = dec.newCache();
  const n = Number(steps), rounds = Number(args[7] ?? 1);
  await dec.step([{ cache: prompt, tokens: Array.from({ length: Number(promptLength) }, (_, i) => 300 + ((i * 37) % 4000)) }]);
  const t = performance.now();
  for (let round = 0; round < rounds; round++) {
    const cache = prompt.prefix(prompt.length);
    let next = 1000;
    for (let i = 0; i < n; i++) next = argmax((await dec.step([{ cache, tokens: [next] }]))[0].logits);
    cache.release();
  }
  console.log(JSON.stringify({ kv, kind, variant, prompt: Number(promptLength), steps: n, rounds, ms_per_token: (performance.now() - t) / (n * rounds) }));
} else if (what === "gemm") {
  const [kind, variant, rowsOut, colsIn, activationRows, calls] = args.map((a, i) => (i < 2 ? a : Number(a))) as [MatrixKind, string, number, number, number, number];
  let s = 1;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
  const m = quantizeMatrix(Float32Array.from({ length: rowsOut * colsIn }, rand), rowsOut, colsIn, kind);
  const x = Float32Array.from({ length: activationRows * colsIn }, rand);
  const mm = await KernelMatmul.create(kernels, await relaxedModule(variant));
  const w = mm.load(m);
  mm.run(w, x, activationRows);
  const t = performance.now();
  for (let i = 0; i < calls; i++) mm.run(w, x, activationRows);
  console.log(JSON.stringify({ kind, variant, rowsOut, colsIn, activationRows, calls, us_per_call: ((performance.now() - t) / calls) * 1000 }));
} else {
  throw new Error("usage: kernels-cli.ts decode … | gemm … (see the header)");
}
