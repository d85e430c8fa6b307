// Standard ONNX decoders on our kernels, their weights lifted out of the graph (src/formats/onnx-lift.ts):
// Optimum's fp32 export and onnxruntime's dynamic quantization of it (uint8 MatMulInteger), of a
// qwen2 (tied head, q/k/v biases; its RMSNorms also fused) and a llama (untied, Llama 3's rope scaling), each against the
// PyTorch reference on the same weights and beside onnxruntime-web running the same graph
// (scripts/tinylm/standard_onnx.py). A graph with an op the kernels lack still runs on onnxruntime-web.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readOnnx } from "../src/engine/simd/onnx-reader.js";
import { liftOnnx } from "../src/formats/onnx-lift.js";
import { loadModel } from "../src/model.js";
import { nodeOrt } from "../src/node-runtime.js";
import { DECISIVE, kl, reference, referenceRows, top2 } from "./helpers/checkpoint-reference.js";
import { KERNELS_WASM, RELAXED_WASM, folderReader } from "./helpers/fixture.js";
import { STANDARD_ONNX_ARCHS, standardOnnxFixtures } from "./helpers/interop-fixtures.js";

const ROOT = standardOnnxFixtures();
const kernels = () => WebAssembly.compile(readFileSync(KERNELS_WASM));
const relaxed = () => WebAssembly.compile(readFileSync(RELAXED_WASM));
const base = { ort: nodeOrt(1), kernels, relaxed, engine: { maxBatch: 4, maxQueue: 8, prefixCache: false }, log: () => {} };
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const UINT8 = "uint8 embedding \\+ DequantizeLinear, uint8 MatMulInteger, a scale per tensor";
const cases = [
  ...STANDARD_ONNX_ARCHS.flatMap((arch) => [
    { arch, file: "onnx/model.onnx", stored: "F32 MatMul", maxKl: 0.02 },
    { arch, file: "onnx/model_quantized.onnx", stored: UINT8, maxKl: 0.05 },
  ]),
  { arch: "qwen2", file: "onnx/model_fused_norms.onnx", stored: UINT8, maxKl: 0.05 }, // RMSNorm as SimplifiedLayerNormalization
];

describe.each(cases)("$arch $file", ({ arch, file, stored, maxKl }) => {
  const dir = join(ROOT, arch);
  it("loads on our kernels (no fallback); argmax equals the PyTorch reference's on its decisive rows; KL beside onnxruntime-web's on the same graph", async () => {
    const ours = await loadModel(folderReader(dir), { ...base, onnxFile: file });
    expect(ours.backend).toMatchObject({ name: "simd", kernels: "relaxed-simd", reason: null, graph: null });
    expect(ours.weights).toMatchObject({ format: "onnx", files: [file], architecture: arch });
    expect(ours.weights.quantization).toMatch(new RegExp(`^projections 8-bit, a scale per row, embedding 8-bit, a scale per row; from the graph's ${stored}$`));
    const ref = reference(dir), V = ours.engine.decoder.shape.vocabSize;
    const refRows = ref.prompts.flatMap((_, i) => ref.greedy[i]).map((_, r) => ref.logits.subarray(r * V, (r + 1) * V));
    const decisive = refRows.flatMap((row, r) => (top2(row).gap >= DECISIVE ? [r] : []));
    const agree = (rows: Float32Array[]) => decisive.filter((r) => top2(rows[r]).best === top2(refRows[r]).best).length;
    const meanKl = (rows: Float32Array[]) => mean(refRows.map((row, r) => kl(row, rows[r])));
    const ort = await loadModel(folderReader(dir), { ...base, backend: "ort", onnxFile: file });
    expect(ort.backend).toMatchObject({ name: "ort", reason: "ENGINE=ort", graph: { file, contract: "standard" } });
    const [mine, theirs] = [await referenceRows(ours.engine.decoder, ref), await referenceRows(ort.engine.decoder, ref)];
    const between = mean(theirs.map((row, r) => kl(row, mine[r])));
    console.log(`${arch} ${file}: mean KL vs PyTorch fp32 — our kernels ${meanKl(mine).toExponential(2)}, onnxruntime-web ${meanKl(theirs).toExponential(2)}; ` +
      `KL(onnxruntime-web ‖ ours) ${between.toExponential(2)}; argmax on ${decisive.length}/${refRows.length} decisive rows: ours ${agree(mine)}, onnxruntime-web ${agree(theirs)}`);
    expect(decisive.length).toBeGreaterThanOrEqual(4);
    expect(agree(mine)).toBe(decisive.length);
    expect(agree(theirs)).toBe(decisive.length);
    expect(meanKl(mine)).toBeLessThan(maxKl);
    expect(between).toBeLessThan(maxKl);
  });
});

describe("what the lifter cannot account for runs on onnxruntime-web, the reason named", () => {
  const dir = join(ROOT, "qwen2");
  it("an op the kernels lack (HardSigmoid for layer 0's SiLU): auto falls back and says so; ENGINE=simd refuses", async () => {
    const file = "onnx/model_hard_sigmoid.onnx", lines: string[] = [];
    const m = await loadModel(folderReader(dir), { ...base, onnxFile: file, log: (line) => lines.push(line) });
    const reason = `${file}: op HardSigmoid (node /model/layers.0/mlp/Sigmoid) is not one the kernels compute`;
    expect(m.backend).toMatchObject({ name: "ort", reason, graph: { file, contract: "standard" } });
    expect(m.weights.quantization).toBeNull();
    expect(lines).toEqual([`tinylm-edge: ${file} runs on onnxruntime-web: the WASM SIMD kernels cannot run it (${reason})`]);
    const [{ logits }] = await m.engine.decoder.step([{ cache: m.engine.decoder.newCache(), tokens: reference(dir).prompts[0] }]);
    expect(logits.every(Number.isFinite)).toBe(true);
    await expect(loadModel(folderReader(dir), { ...base, backend: "simd", onnxFile: file })).rejects.toThrow(`ENGINE=simd, but the kernels cannot run ${file}: ${reason}`);
  });

  it("a config.json the graph does not match: missing or extra layers, another epsilon, other rotary frequencies", () => {
    const graph = readOnnx(readFileSync(join(dir, "onnx/model.onnx")));
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    const lift = (overrides: Record<string, unknown>) => () => liftOnnx(graph, { ...config, ...overrides }, "onnx/model.onnx");
    expect(lift({ num_hidden_layers: 3 })).toThrow("onnx/model.onnx: no RMSNorm weight in /model/layers.2/input_layernorm (model.layers.2.input_layernorm.weight)");
    expect(lift({ num_hidden_layers: 1 })).toThrow(`onnx/model.onnx: constant "model.layers.1.input_layernorm.weight" [64] (read by node /model/layers.1/input_layernorm/Mul_1) is not a weight the kernels take`);
    expect(lift({ rms_norm_eps: 1e-5 })).toThrow(/^onnx\/model\.onnx: \/model\/layers\.0\/input_layernorm adds epsilon 9\.99\d+e-7, config\.json's rms_norm_eps is 0\.00001$/);
    expect(lift({ rope_theta: 10000 })).toThrow(/^onnx\/model\.onnx: rotary frequency 1 is 0\.177\d+ in ".+" \(read by node .+\), config\.json's rope_theta \/ rope_scaling give 0\.316\d+$/);
    expect(lift({ model_type: "llama", attention_bias: false })).toThrow(/^onnx\/model\.onnx: constant "model\.layers\.0\.self_attn\.q_proj\.bias" \[64\] \(read by node \/model\/layers\.0\/self_attn\/q_proj\/Add\) is not a weight the kernels take$/);
    // The tied head is held once: the graph's /lm_head weight is the embedding's exact transpose.
    expect(liftOnnx(graph, config, "onnx/model.onnx").arch.tiedHead).toBe(true);
  });
});
