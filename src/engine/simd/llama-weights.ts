// The int8 graph our exporter writes (onnx/model_quantized.onnx), read as a Llama-family decoder's
// weights: the kernels read the same initializers onnxruntime-web does, so the folder keeps one copy.
// Anything else (another graph layout, fp32 weights, shapes the kernels do not tile) is reported as
// UnsupportedModel with the reason, and the model loader falls back to onnxruntime-web.
import { LLAMA_LIKE } from "../decoder.js";
import { DataType, type OnnxGraph, type OnnxTensor } from "./onnx-reader.js";

export class UnsupportedModel extends Error {}

export interface LlamaConfig {
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  vocab: number;
  maxLength: number;
  eps: number;
}

function llamaConfig(config: Record<string, unknown>): LlamaConfig {
  const num = (key: string, fallback?: number): number => {
    const v = config[key] ?? fallback;
    if (typeof v !== "number" || !(v > 0)) throw new UnsupportedModel(`config.json: "${key}" must be a positive number`);
    return v;
  };
  if (!LLAMA_LIKE.includes(String(config.model_type))) throw new UnsupportedModel(`model_type "${config.model_type}" is not Llama-like`);
  if ((config.hidden_act ?? "silu") !== "silu") throw new UnsupportedModel(`hidden_act "${config.hidden_act}" (the kernels do SwiGLU)`);
  if (config.tie_word_embeddings === false) throw new UnsupportedModel("untied LM head (the kernels use the tied int8 table)");
  const dim = num("hidden_size"), heads = num("num_attention_heads");
  return {
    dim, heads, layers: num("num_hidden_layers"), kvHeads: num("num_key_value_heads", heads),
    headDim: num("head_dim", dim / heads), ffn: num("intermediate_size"), vocab: num("vocab_size"),
    maxLength: num("max_position_embeddings"), eps: num("rms_norm_eps", 1e-6),
  };
}

/** An int8 weight as the kernels want it: rows = outputs (the graph stores [in, out]). */
export interface Int8Matrix {
  rows: number;
  cols: number;
  /** [in, out] int8 as stored in the graph; transposed when copied into the kernels' memory. */
  columnMajor: Int8Array;
  scale: Float32Array;
}

export interface LlamaLayerWeights {
  attnNorm: Float32Array;
  qkv: Int8Matrix;
  o: Int8Matrix;
  ffnNorm: Float32Array;
  gateUp: Int8Matrix;
  down: Int8Matrix;
}

export interface LlamaWeights {
  config: LlamaConfig;
  embedding: Int8Matrix; // [vocab, dim]: token lookup and tied LM head
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

function matrix(graph: OnnxGraph, base: string, inputs: number, outputs: number): Int8Matrix {
  const columnMajor = i8(tensor(graph, `${base}_int8`, DataType.INT8, [inputs, outputs]));
  // The kernels store weights with an offset of 64 in 7 bits (relaxed SIMD's unsigned operand).
  for (const v of columnMajor) if (v < -64 || v > 63) throw new UnsupportedModel(`"${base}_int8" has 8-bit weights (${v}); the kernels take 7-bit ones (±63, as our exporter writes)`);
  return { rows: outputs, cols: inputs, columnMajor, scale: f32(tensor(graph, `${base}_scale`, DataType.FLOAT, [outputs])) };
}

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
    finalNorm: f32(tensor(graph, "norm.weight", DataType.FLOAT, [dim])),
    ropeCos: f32(tensor(graph, "rope_cos", DataType.FLOAT, rope.dims)),
    ropeSin: f32(tensor(graph, "rope_sin", DataType.FLOAT, rope.dims)),
    layers,
  };
}
