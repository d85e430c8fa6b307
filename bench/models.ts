// The side-by-side bench's models, one GGUF file per shape that both engines load: llama.cpp (after
// llama-quantize) and our kernels (quantized at load). The shipped model's real weights (its int8
// graph, dequantized to F32), and random F16 weights in the shapes of SmolLM2-135M and
// Qwen2.5-0.5B (speed depends on shape only). Written once under build/bench-models/, reused while
// the shape (and, for the shipped model, its graph) is unchanged.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { llamaWeights } from "../src/engine/simd/llama-weights.js";
import { dequantizeMatrix, type QuantMatrix } from "../src/engine/simd/quantize.js";
import { readOnnx } from "../src/engine/simd/onnx-reader.js";
import { f32, str, u32, writeGguf, type GgufMetaValue, type GgufTensorSource } from "./gguf-writer.js";

export interface BenchShape {
  name: string;
  /** general.architecture: "llama" (rotary q/k rows interleaved, as convert_hf_to_gguf.py writes them) or "qwen2" (q/k/v biases). */
  arch: "llama" | "qwen2";
  layers: number;
  dim: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  vocab: number;
  ropeTheta: number;
  eps: number;
  /** context_length written: room for the bench's longest context. */
  maxLength: number;
  /** The shipped model folder whose weights are converted, or absent: random weights. */
  from?: string;
}

export const SHAPES: BenchShape[] = [
  // model/config.json's shape; its weights are read from model/onnx/model_quantized.onnx.
  { name: "tinylm-14m", arch: "llama", layers: 16, dim: 256, heads: 4, kvHeads: 2, ffn: 704, vocab: 8192, ropeTheta: 10000, eps: 1e-5, maxLength: 512, from: "model" },
  // HuggingFaceTB/SmolLM2-135M's config.json.
  { name: "smollm2-135m", arch: "llama", layers: 30, dim: 576, heads: 9, kvHeads: 3, ffn: 1536, vocab: 49152, ropeTheta: 100000, eps: 1e-5, maxLength: 2048 },
  // Qwen/Qwen2.5-0.5B's config.json (tied embeddings, q/k/v biases).
  { name: "qwen2.5-0.5b", arch: "qwen2", layers: 24, dim: 896, heads: 14, kvHeads: 2, ffn: 4864, vocab: 151936, ropeTheta: 1000000, eps: 1e-6, maxLength: 2048 },
];

const BENCH_MODELS = join(import.meta.dirname, "../build/bench-models");

/** The shape's parameters (tied: the embedding counted once). */
export function parameters(s: BenchShape): number {
  const hd = s.dim / s.heads;
  const attn = s.dim * (s.heads + 2 * s.kvHeads) * hd + s.heads * hd * s.dim + (s.arch === "qwen2" ? (s.heads + 2 * s.kvHeads) * hd : 0);
  return s.layers * (attn + 3 * s.dim * s.ffn + 2 * s.dim) + s.vocab * s.dim + s.dim;
}

function metadata(s: BenchShape): Record<string, GgufMetaValue> {
  const a = s.arch, hd = s.dim / s.heads;
  return {
    "general.architecture": str(a), "general.name": str(`tinylm-edge bench ${s.name}`),
    [`${a}.context_length`]: u32(s.maxLength), [`${a}.embedding_length`]: u32(s.dim), [`${a}.block_count`]: u32(s.layers),
    [`${a}.feed_forward_length`]: u32(s.ffn), [`${a}.attention.head_count`]: u32(s.heads), [`${a}.attention.head_count_kv`]: u32(s.kvHeads),
    [`${a}.attention.layer_norm_rms_epsilon`]: f32(s.eps), [`${a}.rope.freq_base`]: f32(s.ropeTheta), [`${a}.rope.dimension_count`]: u32(hd),
    [`${a}.vocab_size`]: u32(s.vocab),
    // No vocabulary: llama.cpp then makes vocab_size dummy tokens (its bench tools feed token ids, never text).
    "tokenizer.ggml.model": str("none"),
  };
}

/** xorshift32: deterministic, fast, and enough for weights whose values do not matter. */
function uniform(seed: number): (out: Float32Array, scale: number) => void {
  let x = seed >>> 0 || 1;
  return (out, scale) => {
    for (let i = 0; i < out.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = ((x >>> 0) / 2 ** 31 - 1) * scale;
    }
  };
}

/** Random weights of the shape: matrices uniform with a 1/√fan-in scale, norms 1, biases small. */
function randomTensors(s: BenchShape): GgufTensorSource[] {
  const hd = s.dim / s.heads, fill = uniform(0x9e3779b9);
  const matrix = (name: string, rows: number, cols: number): GgufTensorSource => ({
    name, dtype: "F16", shape: [rows, cols], rows: (_start, out) => fill(out, Math.sqrt(3 / cols)),
  });
  const vector = (name: string, n: number, value?: number): GgufTensorSource => ({
    name, dtype: "F32", shape: [n], rows: (_start, out) => (value === undefined ? fill(out, 0.1) : out.fill(value)),
  });
  const out = [matrix("token_embd.weight", s.vocab, s.dim)];
  for (let i = 0; i < s.layers; i++) {
    const b = `blk.${i}.`;
    out.push(vector(`${b}attn_norm.weight`, s.dim, 1), matrix(`${b}attn_q.weight`, s.heads * hd, s.dim),
      matrix(`${b}attn_k.weight`, s.kvHeads * hd, s.dim), matrix(`${b}attn_v.weight`, s.kvHeads * hd, s.dim));
    if (s.arch === "qwen2") out.push(vector(`${b}attn_q.bias`, s.heads * hd), vector(`${b}attn_k.bias`, s.kvHeads * hd), vector(`${b}attn_v.bias`, s.kvHeads * hd));
    out.push(matrix(`${b}attn_output.weight`, s.dim, s.heads * hd), vector(`${b}ffn_norm.weight`, s.dim, 1),
      matrix(`${b}ffn_gate.weight`, s.ffn, s.dim), matrix(`${b}ffn_up.weight`, s.ffn, s.dim), matrix(`${b}ffn_down.weight`, s.dim, s.ffn));
  }
  out.push(vector("output_norm.weight", s.dim, 1));
  return out;
}

/**
 * The shipped model's weights: its graph's 7-bit rows times their scales, in F32. The graph
 * folds 1/√head_dim into q's rows (scripts/tinylm/onnx_graph.py); that is undone, and q's and k's
 * rows are permuted to llama.cpp's interleaved rotary layout, as convert_hf_to_gguf.py does.
 */
function shippedTensors(s: BenchShape, folder: string): GgufTensorSource[] {
  const config = JSON.parse(readFileSync(join(folder, "config.json"), "utf8"));
  const w = llamaWeights(readOnnx(readFileSync(join(folder, "onnx/model_quantized.onnx"))), config);
  const hd = s.dim / s.heads;
  const dense = (m: QuantMatrix, first: number, count: number, times = 1): Float32Array =>
    dequantizeMatrix(m).subarray(first * m.cols, (first + count) * m.cols).map((v) => v * times);
  const interleave = (rows: Float32Array, heads: number): Float32Array => {
    // Per head, Hugging Face's row j (first half) and j + hd/2 (second half) become rows 2j and 2j + 1.
    const out = new Float32Array(rows.length), cols = rows.length / (heads * hd);
    for (let h = 0; h < heads; h++) for (let j = 0; j < hd / 2; j++) for (const half of [0, 1]) {
      out.set(rows.subarray((h * hd + half * (hd / 2) + j) * cols, (h * hd + half * (hd / 2) + j + 1) * cols), (h * hd + 2 * j + half) * cols);
    }
    return out;
  };
  const tensor = (name: string, shape: number[], data: Float32Array): GgufTensorSource => ({
    name, dtype: "F32", shape, rows: (start, out) => out.set(data.subarray(start * shape.at(-1)!, start * shape.at(-1)! + out.length)),
  });
  const out = [tensor("token_embd.weight", [s.vocab, s.dim], dense(w.embedding, 0, s.vocab))];
  w.layers.forEach((l, i) => {
    const b = `blk.${i}.`, q = s.heads * hd, kv = s.kvHeads * hd;
    out.push(
      tensor(`${b}attn_norm.weight`, [s.dim], l.attnNorm),
      tensor(`${b}attn_q.weight`, [q, s.dim], interleave(dense(l.qkv, 0, q, Math.sqrt(hd)), s.heads)),
      tensor(`${b}attn_k.weight`, [kv, s.dim], interleave(dense(l.qkv, q, kv), s.kvHeads)),
      tensor(`${b}attn_v.weight`, [kv, s.dim], dense(l.qkv, q + kv, kv)),
      tensor(`${b}attn_output.weight`, [s.dim, q], dense(l.o, 0, s.dim)),
      tensor(`${b}ffn_norm.weight`, [s.dim], l.ffnNorm),
      tensor(`${b}ffn_gate.weight`, [s.ffn, s.dim], dense(l.gateUp, 0, s.ffn)),
      tensor(`${b}ffn_up.weight`, [s.ffn, s.dim], dense(l.gateUp, s.ffn, s.ffn)),
      tensor(`${b}ffn_down.weight`, [s.dim, s.ffn], dense(l.down, 0, s.dim)),
    );
  });
  out.push(tensor("output_norm.weight", [s.dim], w.finalNorm));
  return out;
}

/** What a cached file was made from: the shape, this file's code, and the shipped graph's bytes. */
function stamp(s: BenchShape): string {
  const h = createHash("sha256").update(JSON.stringify(s)).update(readFileSync(import.meta.filename)).update(readFileSync(join(import.meta.dirname, "gguf-writer.ts")));
  if (s.from) h.update(readFileSync(join(import.meta.dirname, "..", s.from, "onnx/model_quantized.onnx")));
  return h.digest("hex");
}

/** build/bench-models/<shape>/model-f16.gguf (F32 for the shipped weights), written unless it is there and current. */
export function benchModel(s: BenchShape, root = BENCH_MODELS): { dir: string; file: string; wrote: boolean } {
  const dir = join(root, s.name), file = join(dir, s.from ? "model-f32.gguf" : "model-f16.gguf"), stampFile = join(dir, ".stamp");
  const current = stamp(s);
  if (existsSync(file) && existsSync(stampFile) && readFileSync(stampFile, "utf8") === current) return { dir, file, wrote: false };
  mkdirSync(dir, { recursive: true });
  const tensors = s.from ? shippedTensors(s, join(import.meta.dirname, "..", s.from)) : randomTensors(s);
  writeGguf(`${file}.tmp`, metadata(s), tensors);
  renameSync(`${file}.tmp`, file);
  writeFileSync(stampFile, current);
  return { dir, file, wrote: true };
}

/**
 * build/bench-models/<shape>-graph: our exporter's int8 graph (7-bit weights, a scale per row) with
 * random weights of its own at a llama shape, for onnxruntime-web and our kernels on the same
 * weights (scripts/tinylm/shape_folder.py, Debian's python3-torch and python3-onnx), written unless
 * current. Not for qwen2 shapes: the exporter's graph has no q/k/v biases.
 */
export function graphFolder(s: BenchShape, root = BENCH_MODELS): string {
  if (s.arch !== "llama" || s.from) throw new Error(`${s.name}: graph folders are for random-weight llama shapes`);
  const dir = join(root, `${s.name}-graph`), stampFile = join(dir, ".stamp");
  const current = createHash("sha256").update(JSON.stringify(s)).update(readFileSync(join(import.meta.dirname, "../scripts/tinylm/shape_folder.py"))).digest("hex");
  if (existsSync(stampFile) && readFileSync(stampFile, "utf8") === current) return dir;
  execFileSync("/usr/bin/python3", ["-m", "scripts.tinylm.shape_folder", dir, "--layers", String(s.layers), "--dim", String(s.dim), "--heads", String(s.heads),
    "--kv-heads", String(s.kvHeads), "--ffn", String(s.ffn), "--vocab", String(s.vocab), "--rope-theta", String(s.ropeTheta), "--max-len", "1024"],
  { cwd: join(import.meta.dirname, ".."), stdio: ["ignore", "ignore", "pipe"] });
  writeFileSync(stampFile, current);
  return dir;
}

if (process.argv[1] === import.meta.filename) {
  for (const s of SHAPES.filter((s) => process.argv.length <= 2 || process.argv.includes(s.name))) {
    const t = performance.now(), { file, wrote } = benchModel(s);
    console.log(`${s.name}: ${(parameters(s) / 1e6).toFixed(1)}M parameters, ${file} (${(statSync(file).size / 2 ** 20).toFixed(0)} MiB${wrote ? `, written in ${((performance.now() - t) / 1000).toFixed(1)} s` : ", cached"})`);
  }
}
