// The one weight description every checkpoint reader produces (safetensors.ts, gguf.ts, onnx-lift.ts): a
// Llama-family decoder's architecture features and its tensors by Hugging Face name, each with its
// dtype, shape and bytes (a view into the file). validateDescription() checks it against what the
// architecture needs before anything reads a tensor, so a loader downstream can trust every shape.

/** A checkpoint that cannot be served: the message names the file and the field or tensor. */
export class FormatError extends Error {}

/** Element types the readers accept; Q8_0 / Q4_0 are GGUF's 32-value blocks with one f16 scale. */
export type DType = "F32" | "F16" | "BF16" | "Q8_0" | "Q4_0";

const ARCHITECTURES = ["llama", "mistral", "qwen2", "qwen3"] as const;
export type ModelType = (typeof ARCHITECTURES)[number];

/** Llama 3's rope_scaling (type "llama3"): long wavelengths slowed by `factor`, short ones kept, a smooth ramp between. */
export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

export interface Architecture {
  modelType: ModelType;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  vocab: number;
  maxLength: number;
  eps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  /** Keys a position attends to, itself included (mistral), or null: the whole context. */
  slidingWindow: number | null;
  /** q/k/v projections with biases (qwen2). */
  qkvBias: boolean;
  /** RMSNorm over each head of q and k before rotary (qwen3). */
  qkNorm: boolean;
  /** LM head = the embedding table. */
  tiedHead: boolean;
}

export interface TensorData {
  dtype: DType;
  /** Hugging Face order: [rows, cols] for a matrix ([out, in] for a projection), [n] for a vector. */
  shape: number[];
  bytes: Uint8Array;
  /** The file it came from (for error messages). */
  file: string;
  /**
   * llama.cpp's convert permutes llama's q/k rows for its interleaved rotary: within each of this
   * many heads, row 2r + a of the file is Hugging Face's row a·(head_dim/2) + r. Undone on decode.
   */
  interleavedHeads?: number;
}

export interface WeightDescription {
  /** onnx: a standard decoder graph's weights, lifted out of it (onnx-lift.ts). */
  format: "safetensors" | "gguf" | "onnx";
  /** The weight files read, relative to the model folder. */
  files: string[];
  arch: Architecture;
  tensors: Map<string, TensorData>;
  /** What a lifted graph stores its matrices as (onnx-lift.ts: "uint8 MatMulInteger, a scale per tensor"), the tensors here being decoded from it. */
  stored?: string;
  /** Per-frequency divisors of the rotary frequencies (GGUF's rope_freqs.weight: how llama.cpp stores Llama 3's scaling). */
  ropeFactors?: Float32Array;
}

const BLOCK = 32;

/** Bytes of `n` values of a dtype (n a multiple of 32 for the block types). */
export function dtypeBytes(dtype: DType, n: number): number {
  switch (dtype) {
    case "F32": return 4 * n;
    case "F16": case "BF16": return 2 * n;
    case "Q8_0": return (n / BLOCK) * 34;
    case "Q4_0": return (n / BLOCK) * 18;
  }
}

function number(config: Record<string, unknown>, key: string, file: string, fallback?: number, integer = true): number {
  const v = config[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new FormatError(`${file}: "${key}" must be a positive ${integer ? "integer" : "number"}, found ${JSON.stringify(config[key])}`);
  }
  return v;
}

function ropeScaling(raw: unknown, file: string): Llama3RopeScaling | null {
  if (raw === undefined || raw === null) return null;
  const s = raw as Record<string, unknown>;
  const type = s.rope_type ?? s.type;
  if (type === "default") return null;
  if (type !== "llama3") throw new FormatError(`${file}: "rope_scaling" of type ${JSON.stringify(type)} is not supported (the kernels do "llama3" or none)`);
  return {
    factor: number(s, "factor", `${file} rope_scaling`, undefined, false),
    lowFreqFactor: number(s, "low_freq_factor", `${file} rope_scaling`, undefined, false),
    highFreqFactor: number(s, "high_freq_factor", `${file} rope_scaling`, undefined, false),
    originalMaxPositions: number(s, "original_max_position_embeddings", `${file} rope_scaling`),
  };
}

/** A Hugging Face config.json's architecture, or FormatError naming the field outside what the kernels run. */
export function architectureFromConfig(config: Record<string, unknown>, file = "config.json"): Architecture {
  const modelType = config.model_type;
  if (!ARCHITECTURES.includes(modelType as ModelType)) {
    throw new FormatError(`${file}: "model_type" is ${JSON.stringify(modelType)}; the kernels run ${ARCHITECTURES.join(", ")}`);
  }
  const type = modelType as ModelType;
  if ((config.hidden_act ?? "silu") !== "silu") throw new FormatError(`${file}: "hidden_act" ${JSON.stringify(config.hidden_act)} is not supported (the kernels do SwiGLU with silu)`);
  if (config.mlp_bias === true) throw new FormatError(`${file}: "mlp_bias" true is not supported`);
  if ((type === "llama" || type === "mistral" || type === "qwen3") && config.attention_bias === true) {
    throw new FormatError(`${file}: "attention_bias" true is not supported for ${type} (q/k/v biases are qwen2's)`);
  }
  let slidingWindow: number | null = null;
  if (type === "mistral" && config.sliding_window !== undefined && config.sliding_window !== null) {
    slidingWindow = number(config, "sliding_window", file);
  }
  if ((type === "qwen2" || type === "qwen3") && config.use_sliding_window === true) {
    throw new FormatError(`${file}: "use_sliding_window" true is not supported for ${type}`);
  }
  const dim = number(config, "hidden_size", file), heads = number(config, "num_attention_heads", file);
  const arch: Architecture = {
    modelType: type,
    dim, heads,
    layers: number(config, "num_hidden_layers", file),
    kvHeads: number(config, "num_key_value_heads", file, heads),
    headDim: number(config, "head_dim", file, dim / heads),
    ffn: number(config, "intermediate_size", file),
    vocab: number(config, "vocab_size", file),
    maxLength: number(config, "max_position_embeddings", file),
    eps: number(config, "rms_norm_eps", file, 1e-6, false),
    ropeTheta: number(config, "rope_theta", file, 10000, false),
    ropeScaling: ropeScaling(config.rope_scaling, file),
    slidingWindow,
    qkvBias: type === "qwen2",
    qkNorm: type === "qwen3",
    tiedHead: config.tie_word_embeddings === true,
  };
  checkShapes(arch, file);
  return arch;
}

/** Rotary inverse frequencies θ^(−2i/d), i < headDim / 2, with Llama 3's rope_scaling (transformers' _compute_llama3_parameters). */
export function rotaryFrequencies(a: Architecture): Float64Array {
  const inv = Float64Array.from({ length: a.headDim / 2 }, (_, i) => 1 / a.ropeTheta ** ((2 * i) / a.headDim));
  const s = a.ropeScaling;
  if (!s) return inv;
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor, highWavelen = s.originalMaxPositions / s.highFreqFactor;
  for (let i = 0; i < inv.length; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    if (wavelen > lowWavelen) inv[i] /= s.factor;
    else if (wavelen >= highWavelen) {
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
    }
  }
  return inv;
}

/** What the kernels tile: SIMD widths of 8 (the int16 dot product) and whole KV-head groups. */
export function checkShapes(a: Architecture, file: string): void {
  if (a.heads % a.kvHeads) throw new FormatError(`${file}: ${a.heads} attention heads do not group over ${a.kvHeads} KV heads`);
  for (const [what, v] of [["hidden size", a.dim], ["feed-forward size", a.ffn], ["head dimension", a.headDim]] as const) {
    if (v % 8) throw new FormatError(`${file}: ${what} ${v} is not a multiple of 8 (the kernels' SIMD width)`);
  }
}

/** Every tensor the architecture needs, by Hugging Face name, with its shape. */
function expectedTensors(a: Architecture): Map<string, number[]> {
  const t = new Map<string, number[]>();
  t.set("model.embed_tokens.weight", [a.vocab, a.dim]);
  t.set("model.norm.weight", [a.dim]);
  if (!a.tiedHead) t.set("lm_head.weight", [a.vocab, a.dim]);
  const q = a.heads * a.headDim, kv = a.kvHeads * a.headDim;
  for (let i = 0; i < a.layers; i++) {
    const p = `model.layers.${i}.`;
    t.set(`${p}input_layernorm.weight`, [a.dim]);
    t.set(`${p}post_attention_layernorm.weight`, [a.dim]);
    t.set(`${p}self_attn.q_proj.weight`, [q, a.dim]);
    t.set(`${p}self_attn.k_proj.weight`, [kv, a.dim]);
    t.set(`${p}self_attn.v_proj.weight`, [kv, a.dim]);
    t.set(`${p}self_attn.o_proj.weight`, [a.dim, q]);
    if (a.qkvBias) {
      t.set(`${p}self_attn.q_proj.bias`, [q]);
      t.set(`${p}self_attn.k_proj.bias`, [kv]);
      t.set(`${p}self_attn.v_proj.bias`, [kv]);
    }
    if (a.qkNorm) {
      t.set(`${p}self_attn.q_norm.weight`, [a.headDim]);
      t.set(`${p}self_attn.k_norm.weight`, [a.headDim]);
    }
    t.set(`${p}mlp.gate_proj.weight`, [a.ffn, a.dim]);
    t.set(`${p}mlp.up_proj.weight`, [a.ffn, a.dim]);
    t.set(`${p}mlp.down_proj.weight`, [a.dim, a.ffn]);
  }
  return t;
}

/**
 * Every needed tensor present with its shape and a byte length that matches it; no tensor the
 * kernels would silently ignore. Block types need whole blocks per row; vectors must be float.
 */
export function validateDescription(d: WeightDescription): WeightDescription {
  const expected = expectedTensors(d.arch);
  // A tied checkpoint may still carry lm_head.weight (a copy of the embedding): it is not read.
  if (d.arch.tiedHead) d.tensors.delete("lm_head.weight");
  for (const [name, t] of d.tensors) {
    if (!expected.has(name)) throw new FormatError(`${t.file}: tensor "${name}" is not part of a ${d.arch.modelType} decoder as the kernels run it`);
  }
  for (const [name, shape] of expected) {
    const t = d.tensors.get(name);
    if (!t) {
      const hint = name === "lm_head.weight" ? ' (an untied head: set "tie_word_embeddings" if the embedding is the head)' : "";
      throw new FormatError(`${d.files.join(", ")}: no tensor "${name}"${hint}`);
    }
    if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
      throw new FormatError(`${t.file}: tensor "${name}" has shape [${t.shape}], the architecture needs [${shape}]`);
    }
    if (shape.length === 1 && t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16") {
      throw new FormatError(`${t.file}: tensor "${name}" is ${t.dtype}; norms and biases must be F32, F16 or BF16`);
    }
    if ((t.dtype === "Q8_0" || t.dtype === "Q4_0") && shape[shape.length - 1] % BLOCK) {
      throw new FormatError(`${t.file}: tensor "${name}" is ${t.dtype} with rows of ${shape[shape.length - 1]} values, not whole blocks of 32`);
    }
    const bytes = dtypeBytes(t.dtype, shape.reduce((a, b) => a * b, 1));
    if (t.bytes.byteLength !== bytes) throw new FormatError(`${t.file}: tensor "${name}" holds ${t.bytes.byteLength} bytes, ${t.dtype} [${shape}] is ${bytes}`);
  }
  return d;
}
