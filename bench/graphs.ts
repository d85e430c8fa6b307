// Raw session.run timings of several ONNX graphs that follow model/README.md's contract, on
// onnxruntime-web (1 WASM thread), interleaved in one process: every round runs each case on every
// graph in turn, so the shared vCPUs' drift (±30% over minutes) hits all graphs alike. This is how
// each graph change in BENCHMARKS.md was decided (ORT's own per-node profile overstates small nodes).
//   npx tsx bench/graphs.ts [--model-dir model] [--rounds 5] a.onnx b.onnx ...
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { modelShapeFromConfig } from "../src/engine/decoder.js";
import { nodeOrt } from "../src/node-runtime.js";
import { median } from "./stats.js";

const { values, positionals: files } = parseArgs({
  allowPositionals: true,
  options: { "model-dir": { type: "string", default: "model" }, rounds: { type: "string", default: "5" } },
});
if (!files.length) throw new Error("usage: tsx bench/graphs.ts [--model-dir model] [--rounds 5] a.onnx b.onnx ...");
const shape = modelShapeFromConfig(JSON.parse(readFileSync(join(values["model-dir"]!, "config.json"), "utf8")));
const ort = nodeOrt(1);
const sessions = await Promise.all(files.map((f) => ort.InferenceSession.create(readFileSync(f), { executionProviders: ["wasm"], graphOptimizationLevel: "all" })));

/** Inputs for `batch` rows of `seq` new tokens after `past` cached positions (all real tokens). */
function feeds(batch: number, seq: number, past: number): Record<string, InstanceType<typeof ort.Tensor>> {
  const { layers, kvHeads, headDim } = shape;
  const f: Record<string, InstanceType<typeof ort.Tensor>> = {
    input_ids: new ort.Tensor("int64", BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt(300 + ((i * 37) % 4000))), [batch, seq]),
    attention_mask: new ort.Tensor("int64", new BigInt64Array(batch * (past + seq)).fill(1n), [batch, past + seq]),
    position_ids: new ort.Tensor("int64", BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt(past + (i % seq))), [batch, seq]),
    logits_to_keep: new ort.Tensor("int64", BigInt64Array.of(1n), [1]),
    temperature: new ort.Tensor("float32", new Float32Array(batch).fill(1), [batch]),
  };
  for (let i = 0; i < layers; i++) {
    for (const kv of ["key", "value"]) {
      f[`past_key_values.${i}.${kv}`] = new ort.Tensor("float32", new Float32Array(batch * kvHeads * past * headDim), [batch, kvHeads, past, headDim]);
    }
  }
  return f;
}

const cases = [
  { name: "prefill 128 (ms)", batch: 1, seq: 128, past: 0, runs: 8 },
  { name: "decode @128 (ms)", batch: 1, seq: 1, past: 127, runs: 60 },
  { name: "decode @512 (ms)", batch: 1, seq: 1, past: Math.min(511, shape.maxLength - 1), runs: 40 },
  { name: "batch 8 @128 (ms)", batch: 8, seq: 1, past: 127, runs: 25 },
];
const results = files.map(() => cases.map(() => [] as number[]));
for (const s of sessions) for (const c of cases) await s.run(feeds(c.batch, c.seq, c.past)); // warm-up
for (let r = 0; r < Number(values.rounds); r++) {
  for (const [ci, c] of cases.entries()) {
    const input = feeds(c.batch, c.seq, c.past);
    for (const [gi, s] of sessions.entries()) {
      const times: number[] = [];
      for (let i = 0; i < c.runs; i++) {
        const t = performance.now();
        await s.run(input);
        times.push(performance.now() - t);
      }
      results[gi][ci].push(median(times));
    }
  }
}
console.log(`| graph | ${cases.map((c) => c.name).join(" | ")} |`);
console.log(`|---|${cases.map(() => "---|").join("")}`);
files.forEach((f, gi) => console.log(`| ${f} | ${cases.map((_, ci) => median(results[gi][ci]).toFixed(2)).join(" | ")} |`));
