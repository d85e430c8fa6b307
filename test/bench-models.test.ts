// The side-by-side bench's GGUF files (bench/models.ts): the shipped model converted to GGUF runs on
// our kernels exactly as its own int8 graph does (so llama.cpp and we run the same weights), and a
// random-weight shape reads back through src/formats/gguf.ts as the shape it was written for.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { benchModel, parameters, SHAPES, type BenchShape } from "../bench/models.js";
import { ggufDescription, parseGguf } from "../src/formats/gguf.js";
import { SimdDecoder } from "../src/engine/simd/decoder.js";
import { kernelWeights, llamaWeights } from "../src/engine/simd/llama-weights.js";
import { readOnnx } from "../src/engine/simd/onnx-reader.js";
import { decodeVector } from "../src/formats/decode.js";
import { KERNELS_WASM } from "./helpers/fixture.js";

const ROOT = join(import.meta.dirname, "..");
const kernels = () => WebAssembly.compile(readFileSync(KERNELS_WASM));
const readGguf = (file: string) => ggufDescription(parseGguf(new Uint8Array(readFileSync(file)), file), file);

describe("bench models (bench/models.ts)", () => {
  it("the shipped model as GGUF gives our kernels the logits of its int8 graph", async () => {
    const shipped = SHAPES.find((s) => s.from === "model")!;
    const { file } = benchModel(shipped, mkdtempSync(join(tmpdir(), "bench-models-")));
    const config = JSON.parse(readFileSync(join(ROOT, "model/config.json"), "utf8"));
    const fromOnnx = await SimdDecoder.create(await kernels(), llamaWeights(readOnnx(readFileSync(join(ROOT, "model/onnx/model_quantized.onnx"))), config));
    const fromGguf = await SimdDecoder.create(await kernels(), kernelWeights(readGguf(file)));
    const prompt = Array.from({ length: 40 }, (_, i) => 300 + ((i * 37) % 4000));
    const a = fromOnnx.newCache(), b = fromGguf.newCache();
    let [x] = await fromOnnx.step([{ cache: a, tokens: prompt }]), [y] = await fromGguf.step([{ cache: b, tokens: prompt }]);
    for (let step = 0; step < 4; step++) {
      let diff = 0;
      x.logits.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - y.logits[i]))));
      // The graph's 7-bit rows come back as the same 7-bit rows (scales within an f32 rounding).
      expect(diff).toBeLessThan(1e-3);
      const next = x.logits.indexOf(Math.max(...x.logits));
      [x] = await fromOnnx.step([{ cache: a, tokens: [next] }]);
      [y] = await fromGguf.step([{ cache: b, tokens: [next] }]);
    }
  });

  it("a random-weight shape reads back as that shape, q/k/v biases included", () => {
    const shape: BenchShape = { name: "tiny-qwen2", arch: "qwen2", layers: 2, dim: 64, heads: 4, kvHeads: 2, ffn: 96, vocab: 320, ropeTheta: 1e6, eps: 1e-6, maxLength: 256 };
    const { file } = benchModel(shape, mkdtempSync(join(tmpdir(), "bench-models-")));
    const d = readGguf(file);
    expect(d.arch).toMatchObject({ modelType: "qwen2", layers: 2, dim: 64, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, vocab: 320, maxLength: 256, eps: Math.fround(1e-6), ropeTheta: 1e6, qkvBias: true, tiedHead: true });
    const counted = [...d.tensors.values()].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    expect(counted).toBe(parameters(shape));
    const q = d.tensors.get("model.layers.1.self_attn.q_proj.weight")!;
    expect([q.dtype, q.shape]).toEqual(["F16", [64, 64]]);
    const values = decodeVector({ ...q, shape: [q.shape[0] * q.shape[1]] });
    const bound = Math.sqrt(3 / 64);
    expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(bound * 1.001);
    expect(new Set(values).size).toBeGreaterThan(values.length / 2); // random, not a constant
    expect(decodeVector(d.tensors.get("model.norm.weight")!).every((v) => v === 1)).toBe(true);
  });
});
