// The kernels' weights (LlamaWeights), from either source:
//  - the int8 graph our exporter writes (onnx/model_quantized.onnx): the kernels read the same
//    initializers onnxruntime-web does, so the folder keeps one copy. Anything else (another graph
//    layout, fp32 weights, shapes the kernels do not tile) is reported as UnsupportedModel with the
//    reason, and the model loader falls back to onnxruntime-web;
//  - a validated weight description (src/formats/: safetensors, GGUF), made once here into the
//    kernels' kinds (quantize.ts): F32/F16/BF16 quantized to 8-bit rows (or 4-bit blocks), GGUF's
//    Q8_0 / Q4_0 blocks repacked value for value.
import { DataType, type OnnxGraph, type OnnxTensor } from "./onnx-reader.js";
import { decodeVector, rowDecoder, sourceRow } from "../../formats/decode.js";
import { rotaryFrequencies, type Architecture, type TensorData, type WeightDescription } from "../../formats/weights.js";
import { fromColumnMajorInt8, quantizeRows, repackGgufBlocks, type MatrixKind, type QuantMatrix } from "./quantize.js";

export class UnsupportedModel extends Error {}

/**
 * What LlamaWeights hold and how each array is encoded (fields, the matrix kinds' layouts and
 * rounding in quantize.ts, the rotary tables). Packs (src/packed.ts) record it and one of another
 * version is not used: bump it with any change here or in quantize.ts that changes the weights the decoder gets.
 */
export const KERNEL_WEIGHTS_VERSION = 2; // 2: the block kinds' 4 rows interleaved (quantize.ts)

/** The shape the kernels take: the architecture's sizes, with the sliding window as a number (0: the whole context). */
export type LlamaConfig = Pick<Architecture, "dim" | "layers" | "heads" | "kvHeads" | "headDim" | "ffn" | "vocab" | "maxLength" | "eps"> & {
  /** Keys a position attends to, itself included (mistral), or 0: the whole context. */
  slidingWindow: number;
};

function llamaConfig(config: Record<string, unknown>): LlamaConfig {
  const num = (key: string, fallback?: number): number => {
    const v = config[key] ?? fallback;
    if (typeof v !== "number" || !(v > 0)) throw new UnsupportedModel(`config.json: "${key}" must be a positive number`);
    return v;
  };
  if (config.model_type !== "llama") throw new UnsupportedModel(`model_type "${config.model_type}" (our exporter's graph is a plain llama; other architectures run from safetensors or GGUF)`);
  if ((config.hidden_act ?? "silu") !== "silu") throw new UnsupportedModel(`hidden_act "${config.hidden_act}" (the kernels do SwiGLU)`);
  if (config.tie_word_embeddings === false) throw new UnsupportedModel("untied LM head (our exporter's graph has the tied int8 table)");
  const dim = num("hidden_size"), heads = num("num_attention_heads");
  return {
    dim, heads, layers: num("num_hidden_layers"), kvHeads: num("num_key_value_heads", heads),
    headDim: num("head_dim", dim / heads), ffn: num("intermediate_size"), vocab: num("vocab_size"),
    maxLength: num("max_position_embeddings"), eps: num("rms_norm_eps", 1e-6), slidingWindow: 0,
  };
}

export interface LlamaLayerWeights {
  attnNorm: Float32Array;
  qkv: QuantMatrix;
  /** q, k, v biases (qwen2), the q part scaled by 1/√head_dim as the q rows are; or null. */
  qkvBias: Float32Array | null;
  /** Per-head RMSNorm weights of q (carrying 1/√head_dim) and k (qwen3), or null. */
  qNorm: Float32Array | null;
  kNorm: Float32Array | null;
  o: QuantMatrix;
  ffnNorm: Float32Array;
  gateUp: QuantMatrix;
  down: QuantMatrix;
}

export interface LlamaWeights {
  config: LlamaConfig;
  embedding: QuantMatrix; // [vocab, dim]: token lookup, and the LM head when lmHead is null (tied)
  lmHead: QuantMatrix | null;
  finalNorm: Float32Array;
  ropeCos: Float32Array; // [positions, headDim / 2]
  ropeSin: Float32Array;
  layers: LlamaLayerWeights[];
}

// Every op type our exporter's int8 graph contains; another op means another model shape.
const KNOWN_OPS = new Set([
  "Add", "Cast", "Concat", "DynamicQuantizeMatMul", "Equal", "Gather", "Greater", "MatMul", "Mul", "Neg", "Or", "Range",
  "Reshape", "RotaryEmbedding", "Shape", "Sigmoid", "SimplifiedLayerNormalization", "Slice", "Softmax", "Split", "Sub",
  "Tile", "Transpose", "Unsqueeze", "Where", "Div",
]);

function tensor(graph: OnnxGraph, name: string, dataType: number, dims: number[]): OnnxTensor & { raw: Uint8Array } {
  const t = graph.initializers.get(name);
  if (!t) throw new UnsupportedModel(`no initializer "${name}"`);
  if (t.dataType !== dataType) throw new UnsupportedModel(`"${name}" has data type ${t.dataType}, expected ${dataType}`);
  if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
    throw new UnsupportedModel(`"${name}" has shape [${t.dims}], expected [${dims}]`);
  }
  const bytes = dims.reduce((a, b) => a * b, 1) * (dataType === DataType.INT8 ? 1 : 4);
  if (!t.raw || t.raw.byteLength !== bytes) throw new Error(`"${name}": expected ${bytes} bytes of raw data, found ${t.raw?.byteLength ?? "none"} (corrupt or external data)`);
  return t as OnnxTensor & { raw: Uint8Array };
}

// Copies, so the typed arrays are aligned whatever the tensor's offset in the file.
const f32 = (t: { raw: Uint8Array }) => new Float32Array(new Uint8Array(t.raw).buffer);
const i8 = (t: { raw: Uint8Array }) => new Int8Array(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);

// The graph stores [in, out] int8 with a scale per output; the kernels take one row per output.
// Our exporter writes 7-bit weights (q7, relaxed SIMD's fastest kind); other 8-bit ones run as q8.
function matrix(graph: OnnxGraph, base: string, inputs: number, outputs: number): QuantMatrix {
  const columnMajor = i8(tensor(graph, `${base}_int8`, DataType.INT8, [inputs, outputs]));
  return fromColumnMajorInt8(columnMajor, f32(tensor(graph, `${base}_scale`, DataType.FLOAT, [outputs])), outputs, inputs);
}

/** Our exporter's graphs carry their rotary tables (rope_cos); a standard export computes them from positions (src/formats/onnx-lift.ts lifts those). */
export const isOurExport = (graph: OnnxGraph): boolean => graph.initializers.has("rope_cos");

/** The weights of our int8 graph, or UnsupportedModel naming why the kernels cannot run it. */
export function llamaWeights(graph: OnnxGraph, configJson: Record<string, unknown>): LlamaWeights {
  const c = llamaConfig(configJson);
  const unknown = graph.nodes.find((n) => !KNOWN_OPS.has(n.opType));
  if (unknown) throw new UnsupportedModel(`op ${unknown.opType} (node ${unknown.name}) is not one the kernels implement`);
  const quantized = graph.nodes.filter((n) => n.opType === "DynamicQuantizeMatMul");
  if (quantized.length !== 4 * c.layers) throw new UnsupportedModel(`${quantized.length} DynamicQuantizeMatMul nodes, expected 4 per layer (an fp32 or differently quantized graph)`);
  for (const n of quantized) {
    const zero = graph.initializers.get(n.inputs[3] ?? "");
    const zeroPoint = zero ? [...(zero.raw ?? []), ...zero.int32] : [];
    if (n.inputs[3] && (!zero || zeroPoint.some((b) => b !== 0))) throw new UnsupportedModel(`node ${n.name}: non-zero weight zero point`);
  }
  if (c.heads % c.kvHeads) throw new UnsupportedModel(`${c.heads} heads do not group over ${c.kvHeads} KV heads`);
  for (const [what, v] of [["hidden_size", c.dim], ["intermediate_size", c.ffn], ["head_dim", c.headDim]] as const) {
    if (v % 8) throw new UnsupportedModel(`${what} ${v} is not a multiple of 8`);
  }
  const { dim, heads, kvHeads, headDim: hd, ffn, vocab } = c;
  const layers = Array.from({ length: c.layers }, (_, i): LlamaLayerWeights => {
    const p = `layers.${i}.`;
    return {
      attnNorm: f32(tensor(graph, `${p}input_layernorm.weight`, DataType.FLOAT, [dim])),
      qkv: matrix(graph, `${p}self_attn.qkv_proj.weight.T`, dim, (heads + 2 * kvHeads) * hd),
      qkvBias: null, qNorm: null, kNorm: null,
      o: matrix(graph, `${p}self_attn.o_proj.weight.T`, heads * hd, dim),
      ffnNorm: f32(tensor(graph, `${p}post_attention_layernorm.weight`, DataType.FLOAT, [dim])),
      gateUp: matrix(graph, `${p}mlp.gate_up_proj.weight.T`, dim, 2 * ffn),
      down: matrix(graph, `${p}mlp.down_proj.weight.T`, ffn, dim),
    };
  });
  const rope = graph.initializers.get("rope_cos");
  if (!rope || rope.dims.length !== 2 || rope.dims[1] !== hd / 2 || rope.dims[0] < c.maxLength) {
    throw new UnsupportedModel(`rope_cos must be [≥ ${c.maxLength}, ${hd / 2}], found [${rope?.dims ?? "none"}]`);
  }
  return {
    config: c,
    embedding: matrix(graph, "lm_head.weight.T", dim, vocab),
    lmHead: null,
    finalNorm: f32(tensor(graph, "norm.weight", DataType.FLOAT, [dim])),
    ropeCos: f32(tensor(graph, "rope_cos", DataType.FLOAT, rope.dims)),
    ropeSin: f32(tensor(graph, "rope_sin", DataType.FLOAT, rope.dims)),
    layers,
  };
}

/**
 * Bits per weight of the kernels' matrices made from a checkpoint: 8 (F32/F16/BF16 → q8 rows, a
 * scale each; GGUF Q8_0 and Q4_0 blocks kept as they are), 7 (every matrix, the embedding too → q7
 * rows, a scale each: F-types and Q8_0 quantized, Q4_0 kept; relaxed SIMD's fastest kind, its 7-bit
 * operand taken as stored, and no per-block scaling: the speed of our own exporter's graphs, for
 * about twice 8-bit rows' rounding error) or 4 (every projection → q4_32 blocks: F-types quantized,
 * Q8_0 requantized, Q4_0 kept). The embedding table (the tied LM head) stays 8-bit at 8 and 4 unless
 * the file holds it in Q4_0: a 4-bit head costs the most accuracy per byte saved.
 */
export type WeightBits = 8 | 7 | 4;

/**
 * A tensor in the kernels' layout at `bits`; `rowScale` multiplies every scale (q's 1/√head_dim).
 * Block kinds need columns a multiple of 32 and rows a multiple of 4 (quantize.ts); a tensor of
 * another shape (an embedding of 151,643 rows, say) becomes 8-bit rows instead.
 */
function kernelMatrix(t: TensorData, bits: WeightBits, rowScale = 1): QuantMatrix {
  const { rows, cols, decode } = rowDecoder(t);
  const blocksFit = cols % 32 === 0 && rows % 4 === 0;
  let m: QuantMatrix;
  if (blocksFit && ((t.dtype === "Q8_0" && bits === 8) || t.dtype === "Q4_0")) {
    m = repackGgufBlocks(t.bytes, rows, cols, t.dtype, sourceRow(t));
  } else {
    // q7 rows need columns a multiple of 8 (kernels/simd.h); any other width stays 8-bit rows.
    m = quantizeRows(rows, cols, bits === 4 && blocksFit ? "q4_32" : bits === 7 && cols % 8 === 0 ? "q7" : "q8", decode);
  }
  if (rowScale !== 1) m.scale.forEach((v, i) => (m.scale[i] = v * rowScale));
  return m;
}

/** Matrices with the same inputs and kind as one, their rows stacked (q|k|v, gate|up: one kernel call each). */
function stack(parts: QuantMatrix[]): QuantMatrix {
  const { kind, cols } = parts[0];
  if (parts.some((p) => p.kind !== kind || p.cols !== cols)) throw new UnsupportedModel(`projections of different kinds (${parts.map((p) => p.kind)}) cannot be stacked`);
  const concat = <T extends Uint8Array | Float32Array>(arrays: T[], make: (n: number) => T): T => {
    const out = make(arrays.reduce((n, a) => n + a.length, 0));
    let at = 0;
    for (const a of arrays) out.set(a, (at += a.length) - a.length);
    return out;
  };
  // Block scales are interleaved by 4 rows (quantize.ts); a part's rows are a multiple of 4, so its scales concatenate too.
  return {
    kind, cols, rows: parts.reduce((n, p) => n + p.rows, 0),
    data: concat(parts.map((p) => p.data), (n) => new Uint8Array(n)),
    scale: concat(parts.map((p) => p.scale), (n) => new Float32Array(n)),
  };
}

/**
 * Rotary cos/sin tables [maxLength, headDim / 2] in Hugging Face's rotate-half layout: the
 * architecture's frequencies (rotaryFrequencies: θ^(−2i/d), Llama 3's rope_scaling) or those divided
 * by GGUF's per-frequency divisors (rope_freqs.weight, what llama.cpp stores for the same scaling).
 */
function ropeTables(a: Architecture, factors?: Float32Array): { cos: Float32Array; sin: Float32Array } {
  const half = a.headDim / 2;
  const inv = rotaryFrequencies(a);
  if (factors) for (let i = 0; i < half; i++) inv[i] /= factors[i];
  const cos = new Float32Array(a.maxLength * half), sin = new Float32Array(a.maxLength * half);
  for (let p = 0; p < a.maxLength; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * Math.fround(inv[i])); // f32, as PyTorch computes it
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** A validated weight description (src/formats/) as the kernels' weights, quantized once. */
export function kernelWeights(d: WeightDescription, bits: WeightBits = 8): LlamaWeights {
  const a = d.arch, t = (name: string) => d.tensors.get(name)!;
  const matrix = (name: string, rowScale = 1) => kernelMatrix(t(name), bits, rowScale);
  const qScale = 1 / Math.sqrt(a.headDim);
  const layers = Array.from({ length: a.layers }, (_, i): LlamaLayerWeights => {
    const p = `model.layers.${i}.`;
    // q carries 1/√head_dim (attention.c takes q pre-scaled); with q RMSNorm the norm's weight does, as a norm undoes any scale before it.
    const qRows = matrix(`${p}self_attn.q_proj.weight`, a.qkNorm ? 1 : qScale);
    let qkvBias: Float32Array | null = null;
    if (a.qkvBias) {
      const q = decodeVector(t(`${p}self_attn.q_proj.bias`)).map((v) => v * qScale);
      qkvBias = Float32Array.from([...q, ...decodeVector(t(`${p}self_attn.k_proj.bias`)), ...decodeVector(t(`${p}self_attn.v_proj.bias`))]);
    }
    return {
      attnNorm: decodeVector(t(`${p}input_layernorm.weight`)),
      qkv: stack([qRows, matrix(`${p}self_attn.k_proj.weight`), matrix(`${p}self_attn.v_proj.weight`)]),
      qkvBias,
      qNorm: a.qkNorm ? decodeVector(t(`${p}self_attn.q_norm.weight`)).map((v) => v * qScale) : null,
      kNorm: a.qkNorm ? decodeVector(t(`${p}self_attn.k_norm.weight`)) : null,
      o: matrix(`${p}self_attn.o_proj.weight`),
      ffnNorm: decodeVector(t(`${p}post_attention_layernorm.weight`)),
      gateUp: stack([matrix(`${p}mlp.gate_proj.weight`), matrix(`${p}mlp.up_proj.weight`)]),
      down: matrix(`${p}mlp.down_proj.weight`),
    };
  });
  const rope = ropeTables(a, d.ropeFactors);
  return {
    config: { dim: a.dim, layers: a.layers, heads: a.heads, kvHeads: a.kvHeads, headDim: a.headDim, ffn: a.ffn, vocab: a.vocab, maxLength: a.maxLength, eps: a.eps, slidingWindow: a.slidingWindow ?? 0 },
    // The table (and a tied head) stays 8-bit at bits = 4 unless the file holds it in Q4_0 (WeightBits).
    embedding: kernelMatrix(t("model.embed_tokens.weight"), bits === 7 ? 7 : 8),
    lmHead: a.tiedHead ? null : kernelMatrix(t("lm_head.weight"), bits === 7 ? 7 : 8),
    finalNorm: decodeVector(t("model.norm.weight")),
    ropeCos: rope.cos,
    ropeSin: rope.sin,
    layers,
  };
}

const KIND_TEXT: Record<MatrixKind, string> = {
  q7: "7-bit, a scale per row", q8: "8-bit, a scale per row", q8_32: "8-bit, a scale per 32 values", q4_32: "4-bit, a scale per 32 values",
};

/** What the kernels run, for /v1/models: the kernels' weight kinds and the dtypes they came from. */
export function describeQuantization(d: WeightDescription, w: LlamaWeights): string {
  const kinds = (ms: QuantMatrix[]) => [...new Set(ms.map((m) => KIND_TEXT[m.kind]))].join(" + ");
  const dtypes = [...new Set([...d.tensors.values()].filter((t) => t.shape.length === 2).map((t) => t.dtype))].sort();
  const projections = w.layers.flatMap((l) => [l.qkv, l.o, l.gateUp, l.down]);
  return `projections ${kinds(projections)}, embedding ${kinds([w.embedding, ...(w.lmHead ? [w.lmHead] : [])])}; from ${d.stored ?? dtypes.join("/")}`;
}
