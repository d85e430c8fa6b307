// GGUF (llama.cpp's format, versions 2 and 3), little-endian: "GGUF", u32 version, u64 tensor count,
// u64 metadata count; metadata as (string key, u32 type, value); tensor infos as (string name, u32
// n_dims, u64 dims[n_dims] innermost first, u32 ggml type, u64 offset); then, at general.alignment
// (default 32), the tensor data, each offset relative to its start. Every length, count and offset
// is checked against the file before it is used.
import { FormatError, checkShapes, validateDescription, type Architecture, type DType, type ModelType, type TensorData, type WeightDescription } from "./weights.js";
import { decodeVector } from "./decode.js";

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, { type: number; dims: number[]; offset: number; bytes: Uint8Array }>;
}

/** ggml type ids (ggml.h) of the tensor types read here, and the names of a few others for errors. */
const GGML_TYPES: Record<number, DType> = { 0: "F32", 1: "F16", 2: "Q4_0", 8: "Q8_0", 30: "BF16" };
const OTHER_TYPES: Record<number, string> = { 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K" };
const BLOCK_BYTES: Record<DType, [number, number]> = { F32: [1, 4], F16: [1, 2], BF16: [1, 2], Q8_0: [32, 34], Q4_0: [32, 18] };

class Cursor {
  pos = 0;
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array, private readonly file: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.bytes.byteLength) throw new FormatError(`${this.file}: truncated at byte ${this.pos} reading ${what} (${n} bytes needed, the file has ${this.bytes.byteLength})`);
  }
  u32(what: string): number {
    this.need(4, what);
    return this.view.getUint32((this.pos += 4) - 4, true);
  }
  u64(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64((this.pos += 8) - 8, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`${this.file}: ${what} is ${v}, larger than any file`);
    return Number(v);
  }
  string(what: string): string {
    const n = this.u64(`${what} length`);
    this.need(n, what);
    return new TextDecoder().decode(this.bytes.subarray(this.pos, (this.pos += n)));
  }

  value(type: number, what: string): GgufValue {
    const v = this.view;
    const fixed = (n: number, get: (at: number) => GgufValue) => {
      this.need(n, what);
      return get((this.pos += n) - n);
    };
    switch (type) {
      case 0: return fixed(1, (at) => v.getUint8(at));
      case 1: return fixed(1, (at) => v.getInt8(at));
      case 2: return fixed(2, (at) => v.getUint16(at, true));
      case 3: return fixed(2, (at) => v.getInt16(at, true));
      case 4: return fixed(4, (at) => v.getUint32(at, true));
      case 5: return fixed(4, (at) => v.getInt32(at, true));
      case 6: return fixed(4, (at) => v.getFloat32(at, true));
      case 7: return fixed(1, (at) => v.getUint8(at) !== 0);
      case 8: return this.string(what);
      case 9: {
        const itemType = this.u32(`${what} item type`), count = this.u64(`${what} count`);
        // Every item takes at least one byte: a count past the file's end is a lie, caught before allocating.
        this.need(count, `${what} (${count} items)`);
        const items: GgufValue[] = new Array(count);
        for (let i = 0; i < count; i++) items[i] = this.value(itemType, what);
        return items;
      }
      case 10: return fixed(8, (at) => v.getBigUint64(at, true));
      case 11: return fixed(8, (at) => v.getBigInt64(at, true));
      case 12: return fixed(8, (at) => v.getFloat64(at, true));
      default: throw new FormatError(`${this.file}: ${what} has unknown value type ${type}`);
    }
  }
}

export function parseGguf(bytes: Uint8Array, file: string): GgufFile {
  const c = new Cursor(bytes, file);
  c.need(4, "the magic");
  if (new TextDecoder().decode(bytes.subarray(0, 4)) !== "GGUF") throw new FormatError(`${file}: not a GGUF file (no "GGUF" magic)`);
  c.pos = 4;
  const version = c.u32("the version");
  if (version !== 2 && version !== 3) throw new FormatError(`${file}: GGUF version ${version}; supported: 2, 3`);
  const tensorCount = c.u64("the tensor count"), kvCount = c.u64("the metadata count");
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key ${i}`);
    metadata.set(key, c.value(c.u32(`metadata "${key}" type`), `metadata "${key}"`));
  }
  const infos: { name: string; dims: number[]; type: number; offset: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`tensor ${i} name`);
    const nDims = c.u32(`tensor "${name}" n_dims`);
    if (nDims < 1 || nDims > 4) throw new FormatError(`${file}: tensor "${name}" has ${nDims} dimensions`);
    const dims = Array.from({ length: nDims }, () => c.u64(`tensor "${name}" dims`));
    infos.push({ name, dims, type: c.u32(`tensor "${name}" type`), offset: c.u64(`tensor "${name}" offset`) });
  }
  const alignment = metadata.get("general.alignment") ?? 32;
  if (typeof alignment !== "number" || alignment < 1 || alignment & (alignment - 1)) throw new FormatError(`${file}: "general.alignment" ${alignment} is not a power of two`);
  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  const tensors: GgufFile["tensors"] = new Map();
  for (const { name, dims, type, offset } of infos) {
    const dtype = GGML_TYPES[type];
    if (!dtype) throw new FormatError(`${file}: tensor "${name}" has ggml type ${OTHER_TYPES[type] ?? type}; supported: F32, F16, BF16, Q8_0, Q4_0`);
    const [block, blockBytes] = BLOCK_BYTES[dtype];
    if (dims[0] % block) throw new FormatError(`${file}: tensor "${name}" is ${dtype} with rows of ${dims[0]} values, not whole blocks of ${block}`);
    const size = (dims.reduce((a, b) => a * b, 1) / block) * blockBytes;
    if (offset % alignment) throw new FormatError(`${file}: tensor "${name}" offset ${offset} is not aligned to ${alignment}`);
    if (dataStart + offset + size > bytes.byteLength) {
      throw new FormatError(`${file}: tensor "${name}" (${size} bytes at offset ${offset}) runs past the end of the file (${bytes.byteLength} bytes): truncated or a header that lies`);
    }
    tensors.set(name, { type, dims, offset, bytes: bytes.subarray(dataStart + offset, dataStart + offset + size) });
  }
  return { version, metadata, tensors };
}

// GGUF tensor names → Hugging Face's (llama.cpp's gguf-py tensor_mapping, for these architectures).
const GLOBAL_NAMES: Record<string, string> = { "token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight" };
const BLOCK_NAMES: Record<string, string> = {
  "attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
  "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight", "attn_v.weight": "self_attn.v_proj.weight",
  "attn_q.bias": "self_attn.q_proj.bias", "attn_k.bias": "self_attn.k_proj.bias", "attn_v.bias": "self_attn.v_proj.bias",
  "attn_output.weight": "self_attn.o_proj.weight", "attn_q_norm.weight": "self_attn.q_norm.weight", "attn_k_norm.weight": "self_attn.k_norm.weight",
  "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight",
};

function hfName(name: string): string | null {
  if (GLOBAL_NAMES[name]) return GLOBAL_NAMES[name];
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  return m && BLOCK_NAMES[m[2]] ? `model.layers.${m[1]}.${BLOCK_NAMES[m[2]]}` : null;
}

const GGUF_ARCHITECTURES = ["llama", "qwen2", "qwen3"];

/** The architecture from general.architecture and its `{arch}.*` hyper-parameters. */
function ggufArchitecture(g: GgufFile, file: string, vocabRows: number): Architecture {
  const arch = g.metadata.get("general.architecture");
  if (typeof arch !== "string" || !GGUF_ARCHITECTURES.includes(arch)) {
    throw new FormatError(`${file}: "general.architecture" is ${JSON.stringify(arch)}; the kernels run ${GGUF_ARCHITECTURES.join(", ")}`);
  }
  const num = (key: string, fallback?: number, integer = true): number => {
    const raw = g.metadata.get(`${arch}.${key}`) ?? fallback;
    const v = typeof raw === "bigint" ? Number(raw) : raw;
    if (typeof v !== "number" || !(v > 0) || (integer && !Number.isInteger(v))) throw new FormatError(`${file}: "${arch}.${key}" must be a positive number, found ${JSON.stringify(String(raw))}`);
    return v;
  };
  const scaling = g.metadata.get(`${arch}.rope.scaling.type`);
  if (scaling !== undefined && scaling !== "none") throw new FormatError(`${file}: "${arch}.rope.scaling.type" ${JSON.stringify(scaling)} is not supported (Llama 3's scaling arrives as rope_freqs.weight)`);
  const window = g.metadata.get(`${arch}.attention.sliding_window`);
  if (window !== undefined && arch !== "llama") throw new FormatError(`${file}: "${arch}.attention.sliding_window" is not supported for ${arch}`);
  const heads = num("attention.head_count"), dim = num("embedding_length");
  const a: Architecture = {
    // llama.cpp writes Mistral as "llama"; a sliding window is what tells them apart here.
    modelType: (window !== undefined ? "mistral" : arch) as ModelType,
    dim, heads,
    layers: num("block_count"),
    kvHeads: num("attention.head_count_kv", heads),
    headDim: num("attention.key_length", dim / heads),
    ffn: num("feed_forward_length"),
    vocab: vocabRows,
    maxLength: num("context_length"),
    eps: num("attention.layer_norm_rms_epsilon", undefined, false),
    ropeTheta: num("rope.freq_base", 10000, false),
    ropeScaling: null,
    slidingWindow: window !== undefined ? num("attention.sliding_window") : null,
    qkvBias: arch === "qwen2",
    qkNorm: arch === "qwen3",
    tiedHead: !g.tensors.has("output.weight"),
  };
  const valueLength = g.metadata.get(`${arch}.attention.value_length`);
  if (valueLength !== undefined && valueLength !== a.headDim) throw new FormatError(`${file}: "${arch}.attention.value_length" ${valueLength} differs from the key length ${a.headDim}`);
  checkShapes(a, file);
  return a;
}

/** A GGUF file's weights as the one description (weights.ts), validated. */
export function ggufDescription(g: GgufFile, file: string): WeightDescription {
  const embedding = g.tensors.get("token_embd.weight");
  if (!embedding) throw new FormatError(`${file}: no tensor "token_embd.weight"`);
  const arch = ggufArchitecture(g, file, embedding.dims[1] ?? 0);
  const tensors = new Map<string, TensorData>();
  let ropeFactors: Float32Array | undefined;
  for (const [name, t] of g.tensors) {
    const tensor: TensorData = { dtype: GGML_TYPES[t.type], shape: [...t.dims].reverse(), bytes: t.bytes, file };
    if (name === "rope_freqs.weight") {
      if (t.dims.length !== 1 || t.dims[0] !== arch.headDim / 2) throw new FormatError(`${file}: tensor "rope_freqs.weight" has shape [${t.dims}], expected [${arch.headDim / 2}]`);
      ropeFactors = decodeVector(tensor);
      continue;
    }
    const hf = hfName(name);
    if (!hf) throw new FormatError(`${file}: tensor "${name}" is not part of a ${arch.modelType} decoder as the kernels run it`);
    // convert_hf_to_gguf.py permutes llama's q and k rows for llama.cpp's interleaved rotary (qwen's use rotate-half as Hugging Face).
    if (arch.modelType === "llama" || arch.modelType === "mistral") {
      if (hf.endsWith("q_proj.weight")) tensor.interleavedHeads = arch.heads;
      if (hf.endsWith("k_proj.weight")) tensor.interleavedHeads = arch.kvHeads;
    }
    tensors.set(hf, tensor);
  }
  return validateDescription({ format: "gguf", files: [file], arch, tensors, ropeFactors });
}

/** tokenizer.ggml.* as the tokenizer's input (src/tokenizer/gguf-vocab.ts), or null when the file has no vocabulary. */
export function ggufVocab(g: GgufFile, file: string): import("../tokenizer/gguf-vocab.js").GgufVocab | null {
  const m = g.metadata;
  const model = m.get("tokenizer.ggml.model");
  if (model === undefined || model === "none") return null; // "none": llama.cpp's word for a GGUF without a vocabulary
  const list = <T>(key: string, kind: string): T[] | undefined => {
    const v = m.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== kind)) throw new FormatError(`${file}: "${key}" is not an array of ${kind}s`);
    return v as T[];
  };
  const id = (key: string): number | undefined => {
    const v = m.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== "number") throw new FormatError(`${file}: "${key}" is not a number`);
    return v;
  };
  const tokens = list<string>("tokenizer.ggml.tokens", "string");
  if (!tokens) throw new FormatError(`${file}: no "tokenizer.ggml.tokens"`);
  const template = m.get("tokenizer.chat_template");
  return {
    model: String(model),
    pre: m.has("tokenizer.ggml.pre") ? String(m.get("tokenizer.ggml.pre")) : undefined,
    tokens,
    scores: list<number>("tokenizer.ggml.scores", "number"),
    types: list<number>("tokenizer.ggml.token_type", "number"),
    merges: list<string>("tokenizer.ggml.merges", "string"),
    bos: id("tokenizer.ggml.bos_token_id"),
    eos: id("tokenizer.ggml.eos_token_id"),
    unk: id("tokenizer.ggml.unknown_token_id"),
    addBos: m.get("tokenizer.ggml.add_bos_token") === true,
    addSpacePrefix: m.get("tokenizer.ggml.add_space_prefix") !== false,
    chatTemplate: typeof template === "string" ? template : undefined,
  };
}
