// The side-by-side bench's GGUF files (bench/models.ts): the shipped model converted to GGUF holds
// exactly its int8 graph's weights (so llama.cpp and we run the same model; test/llamacpp-logits
// checks llama.cpp reads it so), and a random-weight shape reads back through src/formats/gguf.ts as
// the shape it was written for.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { benchModel, parameters, SHAPES, type BenchShape } from "../bench/models.js";
import { ggufDescription, parseGguf } from "../src/formats/gguf.js";
import { llamaWeights } from "../src/engine/simd/llama-weights.js";
import { dequantizeMatrix, type QuantMatrix } from "../src/engine/simd/quantize.js";
import { readOnnx } from "../src/engine/simd/onnx-reader.js";
import { decodeVector } from "../src/formats/decode.js";

const ROOT = join(import.meta.dirname, "..");
const readGguf = (file: string) => ggufDescription(parseGguf(new Uint8Array(readFileSync(file)), file), file);

describe("bench models (bench/models.ts)", () => {
  it("the shipped model as GGUF holds its int8 graph's weights, value for value", () => {
    const shipped = SHAPES.find((s) => s.from === "model")!;
    const { file } = benchModel(shipped, mkdtempSync(join(tmpdir(), "bench-models-")));
    const config = JSON.parse(readFileSync(join(ROOT, "model/config.json"), "utf8"));
    const graph = llamaWeights(readOnnx(readFileSync(join(ROOT, "model/onnx/model_quantized.onnx"))), config);
    const d = readGguf(file);
    expect(d.arch).toMatchObject({ modelType: "llama", layers: 16, dim: 256, heads: 4, kvHeads: 2, headDim: 64, ffn: 704, vocab: 8192, maxLength: 512, tiedHead: true });
    // Read back through the GGUF reader (llama.cpp's q/k row order undone) against the graph's rows × scales;
    // the graph's q rows carry 1/√head_dim, the GGUF's do not.
    const dense = new Map<QuantMatrix, Float32Array>();
    const same = (name: string, m: QuantMatrix, first: number, rows: number, times = 1) => {
      if (!dense.has(m)) dense.set(m, dequantizeMatrix(m));
      const want = dense.get(m)!.subarray(first * m.cols, (first + rows) * m.cols), got = decodeVector(d.tensors.get(name)!);
      let differ = got.length === want.length ? 0 : Infinity;
      for (let k = 0; k < want.length; k++) if (got[k] !== Math.fround(want[k] * times)) differ++;
      expect(differ, name).toBe(0);
    };
    same("model.embed_tokens.weight", graph.embedding, 0, 8192);
    graph.layers.forEach((l, i) => {
      const p = `model.layers.${i}.`;
      same(`${p}self_attn.q_proj.weight`, l.qkv, 0, 256, 8);
      same(`${p}self_attn.k_proj.weight`, l.qkv, 256, 128);
      same(`${p}self_attn.v_proj.weight`, l.qkv, 384, 128);
      same(`${p}self_attn.o_proj.weight`, l.o, 0, 256);
      same(`${p}mlp.gate_proj.weight`, l.gateUp, 0, 704);
      same(`${p}mlp.up_proj.weight`, l.gateUp, 704, 704);
      same(`${p}mlp.down_proj.weight`, l.down, 0, 256);
      expect(decodeVector(d.tensors.get(`${p}input_layernorm.weight`)!)).toEqual(l.attnNorm);
      expect(decodeVector(d.tensors.get(`${p}post_attention_layernorm.weight`)!)).toEqual(l.ffnNorm);
    });
    expect(decodeVector(d.tensors.get("model.norm.weight")!)).toEqual(graph.finalNorm);
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
