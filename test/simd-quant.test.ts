// The kernels' weight kinds (src/engine/simd/quantize.ts, kernels/matmul.c, kernels/relaxed.wat):
// each kind × plain SIMD128 / relaxed SIMD against an f32 matrix product, GGUF Q8_0 / Q4_0 blocks
// repacked value for value, and whole models quantized at load to each kind against PyTorch.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { greedy, ModelFolder } from "../scripts/parity.js";
import { KernelMatmul, SimdDecoder, type KernelVariant, type KvCacheKind } from "../src/engine/simd/decoder.js";
import { llamaWeights, type LlamaWeights } from "../src/engine/simd/llama-weights.js";
import { readOnnx, type OnnxGraph } from "../src/engine/simd/onnx-reader.js";
import { dequantizeMatrix, quantizeMatrix, repackGgufBlocks, type MatrixKind, type QuantMatrix } from "../src/engine/simd/quantize.js";
import { nodeOrt } from "../src/node-runtime.js";
import { meanKl } from "./helpers/kl.js";
import { FIXTURE_DIR, fixture, KERNELS_WASM, parity, RELAXED_WASM, webDecoder } from "./helpers/fixture.js";

const KINDS: MatrixKind[] = ["q7", "q8", "q8_32", "q4_32"];
const VARIANTS: KernelVariant[] = ["simd128", "relaxed-simd"];

async function compiled(variant: KernelVariant) {
  nodeOrt(1); // the Node host's V8 flags, relaxed SIMD among them
  const kernels = await WebAssembly.compile(readFileSync(KERNELS_WASM));
  return { kernels, relaxed: variant === "relaxed-simd" ? await WebAssembly.compile(readFileSync(RELAXED_WASM)) : null };
}

/** Deterministic normal-ish values (sum of uniforms), with a few outliers like real activations. */
function values(n: number, seed: number, outliers = false): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Float32Array.from({ length: n }, (_, i) => (u() + u() + u() + u() - 2) * (outliers && i % 97 === 5 ? 8 : 1));
}

/** y = x · Wᵀ in f64. */
function reference(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number): Float64Array {
  const y = new Float64Array(n * rows);
  for (let r = 0; r < n; r++) for (let o = 0; o < rows; o++) {
    let s = 0;
    for (let k = 0; k < cols; k++) s += x[r * cols + k] * w[o * cols + k];
    y[r * rows + o] = s;
  }
  return y;
}

/** ‖a − b‖ / ‖b‖. */
function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) (num += (a[i] - b[i]) ** 2), (den += b[i] ** 2);
  return Math.sqrt(num / den);
}

// Bounds on ‖error‖ / ‖y‖ (uniform rounding of near-Gaussian values). The weights alone: q7 ±63 and
// q8 ±127 per row, q8_32 per block, q4_32 ±8 per block. The activations (with 8× outliers, as real
// ones have, which coarsen a row's scale): int16 on plain SIMD128, int8 on relaxed SIMD (1.8–2.6%).
const WEIGHT_TOLERANCE: Record<MatrixKind, number> = { q7: 0.03, q8: 0.015, q8_32: 0.012, q4_32: 0.14 };
const ACTIVATION_TOLERANCE: Record<KernelVariant, number> = { simd128: 1e-3, "relaxed-simd": 0.03 };

describe.each(VARIANTS)("matrix kernels (%s)", (variant) => {
  it.each(KINDS)("%s: y = x · Wᵀ as an f32 product, within the quantization error (1–9 rows, GEMV and GEMM paths)", async (kind) => {
    const { kernels, relaxed } = await compiled(variant);
    const mm = await KernelMatmul.create(kernels, relaxed);
    // 96 × 256 tiles evenly; 100 × 264 leaves a tail of rows and (relaxed) columns off the 16-byte
    // grid; 44 × 272 a last 16 columns after the relaxed single-row loop's 32 at a time.
    const shapes = kind === "q7" || kind === "q8" ? [[96, 256], [100, 264], [44, 272]] : [[96, 256], [36, 1024]];
    for (const [rows, cols] of shapes) {
      const w = values(rows * cols, rows + cols);
      const m = quantizeMatrix(w, rows, cols, kind);
      for (const n of [1, 2, 5, 9]) {
        const x = values(n * cols, 7 * n, true);
        const y = mm.run(mm.load(m), x, n);
        // Against the quantized weights: only the activations' rounding is left.
        const exact = relError(y, reference(dequantizeMatrix(m), rows, cols, x, n));
        expect(exact).toBeLessThan(ACTIVATION_TOLERANCE[variant]);
        // Against the f32 weights: the kind's own quantization error.
        expect(relError(y, reference(w, rows, cols, x, n))).toBeLessThan(WEIGHT_TOLERANCE[kind] + ACTIVATION_TOLERANCE[variant]);
      }
    }
  });
});

describe("quantize.ts", () => {
  it("the kinds' dequantized values are within half a step of the f32 ones, per row or per 32-value block (q4_32: a step at the far end)", () => {
    const rows = 8, cols = 64, w = values(rows * cols, 3, true);
    for (const kind of KINDS) {
      const m = quantizeMatrix(w, rows, cols, kind), back = dequantizeMatrix(m);
      const levels = { q7: 63, q8: 127, q8_32: 127, q4_32: 8 }[kind], span = kind === "q7" || kind === "q8" ? cols : 32;
      for (let i = 0; i < w.length; i++) {
        const at = i - (i % span);
        const amax = Math.max(...Array.from(w.subarray(at, at + span), Math.abs));
        // Q4_0 maps the block's largest value, with its sign, to −8: values of the other sign end at +7.
        const step = amax / levels, bound = kind === "q4_32" && Math.abs(w[i]) > 6.5 * step ? step : step / 2;
        expect(Math.abs(back[i] - w[i])).toBeLessThanOrEqual(bound * 1.0001 + 1e-7);
      }
    }
  });

  it("refuses shapes the kinds cannot tile, naming them", () => {
    expect(() => quantizeMatrix(new Float32Array(6 * 64), 6, 64, "q4_32")).toThrow(/q4_32 matrix 6 × 64: needs columns a multiple of 32 and rows a multiple of 4/);
    expect(() => quantizeMatrix(new Float32Array(4 * 12), 4, 12, "q8")).toThrow(/12 columns are not a multiple of 8/);
    expect(() => quantizeMatrix(new Float32Array(10), 4, 8, "q8")).toThrow(/10 values is not 4 × 8/);
  });

  /** GGUF blocks as llama.cpp writes them: f16 scale (little-endian), then 32 int8 or 16 nibble bytes. */
  function ggufBlocks(rows: number, cols: number, type: "Q8_0" | "Q4_0", seed: number): { raw: Uint8Array; expected: Float32Array } {
    const blockBytes = type === "Q8_0" ? 34 : 18, blocks = cols / 32;
    const raw = new Uint8Array(rows * blocks * blockBytes), expected = new Float32Array(rows * cols);
    let s = seed;
    const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 16;
    for (let o = 0; o < rows; o++) for (let b = 0; b < blocks; b++) {
      const at = (o * blocks + b) * blockBytes;
      // f16 of 2^(e − 15) · (1 + m/1024), kept in the normal range
      const e = 5 + (next() % 10), mant = next() % 1024, d = 2 ** (e - 15) * (1 + mant / 1024);
      const half = (e << 10) | mant;
      raw[at] = half & 0xff, raw[at + 1] = half >> 8;
      for (let j = 0; j < 32; j++) {
        if (type === "Q8_0") {
          const q = (next() % 255) - 127;
          raw[at + 2 + j] = q & 0xff;
          expected[o * cols + b * 32 + j] = q * d;
        } else {
          const q = next() % 16;
          raw[at + 2 + (j % 16)] |= j < 16 ? q : q << 4;
          expected[o * cols + b * 32 + j] = (q - 8) * d;
        }
      }
    }
    return { raw, expected };
  }

  it.each(["Q8_0", "Q4_0"] as const)("GGUF %s blocks are repacked value for value, and the kernels multiply by exactly those values", async (type) => {
    // 20 rows: the kernels' one-row pass over 4 groups of 4 rows (16 outputs), then a last group
    const rows = 20, cols = 96;
    const { raw, expected } = ggufBlocks(rows, cols, type, 11);
    const m = repackGgufBlocks(raw, rows, cols, type);
    expect(m.kind).toBe(type === "Q8_0" ? "q8_32" : "q4_32");
    expect(Array.from(dequantizeMatrix(m))).toEqual(Array.from(expected));
    for (const variant of VARIANTS) {
      const { kernels, relaxed } = await compiled(variant);
      const mm = await KernelMatmul.create(kernels, relaxed);
      const w = mm.load(m);
      for (const n of [1, 3]) {
        const x = values(n * cols, 5);
        expect(relError(mm.run(w, x, n), reference(expected, rows, cols, x, n))).toBeLessThan(ACTIVATION_TOLERANCE[variant]);
      }
    }
    expect(() => repackGgufBlocks(raw.subarray(1), rows, cols, type)).toThrow(new RegExp(`${type} tensor 20 × 96: expected ${raw.length} bytes, found ${raw.length - 1}`));
  });
});

// Whole models with every matrix quantized at load to one kind.
const f32 = (graph: OnnxGraph, name: string) => {
  const t = graph.initializers.get(name);
  if (!t?.raw) throw new Error(`no f32 initializer ${name}`);
  return new Float32Array(new Uint8Array(t.raw).buffer);
};

/** Our exporter's fp32 graph (onnx/model.onnx: [in, out] weights), every matrix quantized to `kind`. */
function fp32GraphWeights(graph: OnnxGraph, config: Record<string, unknown>, int8Graph: OnnxGraph, kind: MatrixKind): LlamaWeights {
  const base = llamaWeights(int8Graph, config); // norms, rotary tables and the config, unchanged
  const transposed = (name: string, rows: number, cols: number): QuantMatrix => {
    const t = f32(graph, name), out = new Float32Array(rows * cols);
    for (let k = 0; k < cols; k++) for (let o = 0; o < rows; o++) out[o * cols + k] = t[k * rows + o];
    return quantizeMatrix(out, rows, cols, kind);
  };
  const q = (m: QuantMatrix, name: string) => transposed(name, m.rows, m.cols);
  return {
    ...base,
    embedding: quantizeMatrix(f32(graph, "embed_tokens.weight"), base.embedding.rows, base.embedding.cols, kind),
    layers: base.layers.map((l, i) => ({
      ...l,
      qkv: q(l.qkv, `layers.${i}.self_attn.qkv_proj.weight.T`), o: q(l.o, `layers.${i}.self_attn.o_proj.weight.T`),
      gateUp: q(l.gateUp, `layers.${i}.mlp.gate_up_proj.weight.T`), down: q(l.down, `layers.${i}.mlp.down_proj.weight.T`),
    })),
  };
}

/**
 * The int8 graph's 7-bit weights re-encoded exactly as q8 / q8_32 (w·2 at half the scale, every block
 * with the row's scale), or quantized again to q4_32 (lossy; the shipped model has no fp32 graph).
 */
function reencoded(w: LlamaWeights, kind: MatrixKind): LlamaWeights {
  const q = (m: QuantMatrix): QuantMatrix => {
    if (kind === "q4_32") return quantizeMatrix(dequantizeMatrix(m), m.rows, m.cols, kind);
    const data = m.data.map((v) => ((v - 64) * 2) & 0xff), blocks = m.cols / 32;
    if (kind === "q8") return { kind, rows: m.rows, cols: m.cols, data, scale: m.scale.map((s) => s / 2) };
    const scale = new Float32Array(m.rows * blocks), interleaved = new Uint8Array(data.length);
    for (let o = 0; o < m.rows; o++) for (let b = 0; b < blocks; b++) scale[((o >> 2) * blocks + b) * 4 + (o & 3)] = m.scale[o] / 2;
    // each block's 4 rows interleaved by 4 bytes (simd.h)
    for (let o = 0; o < m.rows; o++) for (let k = 0; k < m.cols; k++) interleaved[(((o >> 2) * blocks + (k >> 5)) * 8 + ((k & 31) >> 2)) * 16 + (o & 3) * 4 + (k & 3)] = data[o * m.cols + k];
    return { kind, rows: m.rows, cols: m.cols, data: interleaved, scale };
  };
  return { ...w, embedding: q(w.embedding), layers: w.layers.map((l) => ({ ...l, qkv: q(l.qkv), o: q(l.o), gateUp: q(l.gateUp), down: q(l.down) })) };
}

describe("whole models at each weight kind", () => {
  const read = (path: string) => readOnnx(readFileSync(join(FIXTURE_DIR, path)));

  it.each(VARIANTS)("fixture's fp32 weights quantized at load (%s): q8 and q8_32 close to PyTorch and on its greedy path where the int8 graph is; q4_32 reported", async (variant) => {
    const { kernels, relaxed } = await compiled(variant);
    const fp32 = read("onnx/model.onnx"), int8 = read("onnx/model_quantized.onnx");
    const web = await webDecoder("onnx/model_quantized.onnx");
    const webKl = await meanKl(web, fixture);
    const kl: Record<string, number> = {};
    for (const kind of KINDS) {
      const dec = await SimdDecoder.create(kernels, fp32GraphWeights(fp32, fixture.config, int8, kind), relaxed);
      kl[kind] = await meanKl(dec, fixture);
      if (kind === "q4_32") continue;
      // Greedy: PyTorch's tokens, up to where onnxruntime-web's int8 graph leaves them.
      for (const g of parity.greedy) {
        const ref = await greedy(web, g.prompt, g.tokens.length);
        const agree = ref.findIndex((t, i) => t !== g.tokens[i]);
        const n = agree < 0 ? g.tokens.length : agree;
        expect((await greedy(dec, g.prompt, n))).toEqual(g.tokens.slice(0, n));
      }
    }
    console.log(`fixture (${variant}), mean KL to PyTorch fp32 with weights quantized at load: ${KINDS.map((k) => `${k} ${kl[k].toExponential(2)}`).join(", ")}; ort-web int8 graph ${webKl.toExponential(2)}`);
    expect(kl.q8).toBeLessThanOrEqual(webKl * 1.5);
    expect(kl.q8_32).toBeLessThanOrEqual(webKl * 1.5);
    // 4 bits on a model this small (dim 32: a block is a whole row) is far coarser; bounded, not compared.
    expect(kl.q4_32).toBeLessThan(0.05);
  });

  it("the shipped model: its weights as q8 / q8_32 give q7's logits; q4_32 and an int8 KV cache against PyTorch (KV: KL within 10% of f32's)", async () => {
    const shipped = new ModelFolder(join(import.meta.dirname, "../model"));
    const weights = llamaWeights(readOnnx(readFileSync(join(shipped.dir, "onnx/model_quantized.onnx"))), shipped.config);
    const prompt = shipped.parity.greedy[0].prompt;
    for (const variant of VARIANTS) {
      const { kernels, relaxed } = await compiled(variant);
      const decoder = (w: LlamaWeights, kv: KvCacheKind = "f32") => SimdDecoder.create(kernels, w, relaxed, {}, kv);
      const logits = async (w: LlamaWeights) => {
        const dec = await decoder(w);
        return (await dec.step([{ cache: dec.newCache(), tokens: prompt, logits: "all" }]))[0].logits;
      };
      const q7 = await logits(weights);
      // The same integer products: q8 is scaled in the same order as q7 (bit-exact); q8_32 sums its
      // blocks in f32, which on plain SIMD128 moves logits by ulps. With relaxed SIMD's int8
      // activations an ulp can move a rounding step in the next layer, so there its KL is compared.
      for (const kind of variant === "simd128" ? (["q8", "q8_32"] as const) : (["q8"] as const)) {
        const other = await logits(reencoded(weights, kind));
        let worst = 0;
        for (let i = 0; i < q7.length; i++) worst = Math.max(worst, Math.abs(other[i] - q7[i]));
        expect(worst, `${variant} ${kind}`).toBeLessThan(2e-3);
      }
      const kl = async (w: LlamaWeights, kv?: KvCacheKind) => meanKl(await decoder(w, kv), shipped);
      const [base, kvInt8, q8b, q4] = [await kl(weights), await kl(weights, "int8"), await kl(reencoded(weights, "q8_32")), await kl(reencoded(weights, "q4_32"))];
      console.log(`shipped model (${variant}), mean KL to PyTorch: q7 weights ${base.toExponential(3)}, with an int8 KV cache ${kvInt8.toExponential(3)}; q8_32 weights ${q8b.toExponential(3)}; q4_32 weights ${q4.toExponential(3)}`);
      expect(kvInt8).toBeLessThanOrEqual(base * 1.1);
      expect(q8b).toBeLessThanOrEqual(base * 1.1);
      expect(q4).toBeLessThan(0.05);
    }
  });
});

describe("KV_CACHE", () => {
  it("selects the kernels' KV cache (f32 by default); anything else is refused at start", async () => {
    const { settingsFrom } = await import("../src/hosts/config.js");
    expect(settingsFrom({}).kvCache).toBe("f32");
    expect(settingsFrom({ KV_CACHE: "int8" }).kvCache).toBe("int8");
    expect(() => settingsFrom({ KV_CACHE: "fp16" })).toThrow(/KV_CACHE must be f32 or int8, got "fp16"/);
    const { createBackend } = await import("../src/engine/backends.js");
    const read = async (path: string) => new Uint8Array(readFileSync(join(FIXTURE_DIR, path)));
    const kernels = async () => WebAssembly.compile(readFileSync(KERNELS_WASM));
    const opts = { ort: nodeOrt(1), kernels, onnxFile: "onnx/model_quantized.onnx" };
    const bytes = await read(opts.onnxFile);
    for (const kvCache of [undefined, "int8"] as const) {
      const { decoder } = await createBackend(read, bytes, fixture.config, fixture.shape, { ...opts, kvCache });
      expect((decoder as SimdDecoder).kvCache).toBe(kvCache ?? "f32");
    }
  });
});

describe("WEIGHT_BITS", () => {
  it("is 8 by default or 4; anything else is refused at start", async () => {
    const { settingsFrom } = await import("../src/hosts/config.js");
    expect(settingsFrom({}).weightBits).toBe(8);
    expect(settingsFrom({ WEIGHT_BITS: "4" }).weightBits).toBe(4);
    expect(settingsFrom({ WEIGHT_BITS: "7" }).weightBits).toBe(7);
    for (const bad of ["2", "int4", "16"]) expect(() => settingsFrom({ WEIGHT_BITS: bad })).toThrow(`WEIGHT_BITS must be 8, 7 or 4, got "${bad}"`);
  });
});

describe("MAX_CONTEXT", () => {
  it("caps the positions a sequence may hold (Workers: 2048 by default); below 16 is refused", async () => {
    const { settingsFrom } = await import("../src/hosts/config.js");
    expect(settingsFrom({}).maxContext).toBeNull();
    expect(settingsFrom({}, { maxContext: 2048 }).maxContext).toBe(2048);
    expect(settingsFrom({ MAX_CONTEXT: "256" }, { maxContext: 2048 }).maxContext).toBe(256);
    expect(() => settingsFrom({ MAX_CONTEXT: "8" })).toThrow('MAX_CONTEXT must be an integer of at least 16, got "8"');
  });
});
