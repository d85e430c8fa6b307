// A GGUF file's own vocabulary (tokenizer.ggml.*) as the tokenizer.json Hugging Face would write for
// it, so one Tokenizer class serves both. Two models, as llama.cpp has them:
//   "gpt2"  byte-level BPE (GPT-2, cl100k, Llama 3, Qwen): tokens are byte-level strings, merges given,
//           the pre-tokenizer's split regex chosen by tokenizer.ggml.pre;
//   "llama" SentencePiece BPE with byte fallback (Llama 2, Mistral, TinyLlama): "▁" for spaces,
//           <0xNN> byte tokens, and no merges, only scores: the merges are derived from them as
//           transformers' SentencePieceExtractor does (every split of a piece into two pieces, in
//           the order of the merged piece's score).
import type { TokenizerConfig } from "./tokenizer.js";

export class GgufVocabError extends Error {}

export interface GgufVocab {
  model: string;
  pre?: string;
  tokens: string[];
  scores?: number[];
  /** llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  types?: number[];
  merges?: string[];
  bos?: number;
  eos?: number;
  unk?: number;
  addBos?: boolean;
  addSpacePrefix?: boolean;
  chatTemplate?: string;
}

const NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, BYTE = 6;

// tokenizer.ggml.pre → the split regex (llama.cpp's llm_tokenizer_bpe, for the ones listed).
const CL100K = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const PRE_REGEX: Record<string, string | null> = {
  default: null, gpt2: null, // ByteLevel's own GPT-2 regex
  "llama-bpe": CL100K, llama3: CL100K, "gpt-4": CL100K, cl100k: CL100K, dbrx: CL100K, "smaug-bpe": CL100K,
  qwen2: QWEN2,
};

function addedToken(id: number, content: string, special: boolean) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special };
}

function bosTemplate(bos: string, id: number) {
  return {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: { [bos]: { id: bos, ids: [id], tokens: [bos] } },
  };
}

/** SentencePiece merges from scores: (left, right) for every split of a normal piece into two normal pieces. */
function mergesFromScores(tokens: string[], scores: number[], types: number[]): string[] {
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (types[i] === NORMAL && !ids.has(t)) ids.set(t, i);
  });
  const order = [...ids.values()].sort((a, b) => scores[b] - scores[a] || a - b);
  const merges: string[] = [];
  for (const id of order) {
    const piece = Array.from(tokens[id]);
    const local: [number, number, string][] = [];
    for (let i = 1; i < piece.length; i++) {
      const l = piece.slice(0, i).join(""), r = piece.slice(i).join("");
      const li = ids.get(l), ri = ids.get(r);
      if (li !== undefined && ri !== undefined) local.push([li, ri, `${l} ${r}`]);
    }
    local.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (const m of local) merges.push(m[2]);
  }
  return merges;
}

/** tokenizer.json (as parsed JSON) and tokenizer_config.json fields for a GGUF vocabulary; `source` names the file in errors. */
export function tokenizerJsonFromGguf(v: GgufVocab, source: string): { json: unknown; config: TokenizerConfig } {
  const n = v.tokens.length;
  const types = v.types ?? new Array(n).fill(NORMAL);
  if (types.length !== n) throw new GgufVocabError(`${source}: "tokenizer.ggml.token_type" has ${types.length} entries for ${n} tokens`);
  for (const [what, id] of [["bos_token_id", v.bos], ["eos_token_id", v.eos], ["unknown_token_id", v.unk]] as const) {
    if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id < n)) throw new GgufVocabError(`${source}: "tokenizer.ggml.${what}" ${id} is not a token id (${n} tokens)`);
  }
  const vocab: Record<string, number> = {};
  const added: ReturnType<typeof addedToken>[] = [];
  v.tokens.forEach((t, id) => {
    if (types[id] === CONTROL || types[id] === UNKNOWN) added.push(addedToken(id, t, true));
    else if (types[id] === USER_DEFINED) added.push(addedToken(id, t, false));
    if (!(t in vocab)) vocab[t] = id;
  });
  const config: TokenizerConfig = {
    bos_token: v.bos !== undefined ? v.tokens[v.bos] : null,
    eos_token: v.eos !== undefined ? v.tokens[v.eos] : null,
    ...(v.chatTemplate ? { chat_template: v.chatTemplate } : {}),
  };
  const post = v.addBos && v.bos !== undefined ? bosTemplate(v.tokens[v.bos], v.bos) : null;
  if (v.model === "gpt2") {
    if (!v.merges) throw new GgufVocabError(`${source}: a "gpt2" vocabulary needs "tokenizer.ggml.merges"`);
    const pre = v.pre ?? "default";
    if (!(pre in PRE_REGEX)) throw new GgufVocabError(`${source}: "tokenizer.ggml.pre" ${JSON.stringify(pre)} is not a pre-tokenizer this server knows (${Object.keys(PRE_REGEX).join(", ")}); put the model's tokenizer.json beside it`);
    const regex = PRE_REGEX[pre];
    const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: regex === null };
    const json = {
      version: "1.0", added_tokens: added, normalizer: null, post_processor: post,
      pre_tokenizer: regex === null ? byteLevel : { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false }, byteLevel] },
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges: v.merges },
    };
    return { json, config };
  }
  if (v.model === "llama") {
    if (!v.scores || v.scores.length !== n) throw new GgufVocabError(`${source}: a "llama" vocabulary needs "tokenizer.ggml.scores" for each of its ${n} tokens`);
    for (let b = 0; b < 256; b++) {
      const name = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
      if (types[vocab[name]] !== BYTE) throw new GgufVocabError(`${source}: a "llama" vocabulary needs the 256 byte tokens; ${name} is missing`);
    }
    const unk = v.unk !== undefined ? v.tokens[v.unk] : null;
    const json = {
      version: "1.0", added_tokens: added, post_processor: post, pre_tokenizer: null,
      normalizer: { type: "Sequence", normalizers: [...(v.addSpacePrefix === false ? [] : [{ type: "Prepend", prepend: "\u2581" }]), { type: "Replace", pattern: { String: " " }, content: "\u2581" }] },
      decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "\u2581" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, ...(v.addSpacePrefix === false ? [] : [{ type: "Strip", content: " ", start: 1, stop: 0 }])] },
      model: { type: "BPE", dropout: null, unk_token: unk, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges: mergesFromScores(v.tokens, v.scores, types) },
    };
    return { json, config };
  }
  throw new GgufVocabError(`${source}: "tokenizer.ggml.model" ${JSON.stringify(v.model)} is not supported (gpt2 or llama); put the model's tokenizer.json beside it`);
}
