// The runtime tokenizer: a Hugging Face tokenizer.json (byte-level BPE) loaded into
// @huggingface/tokenizers for encoding; decoding goes through our own id → bytes table so it is
// exact (BOM-prefixed tokens survive) and can stream.
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { tokenStringToBytes } from "./byte-level.js";
import { StreamDecoder } from "./stream-decoder.js";

export class TokenizerError extends Error {}

interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[]; byte_fallback?: boolean };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
  decoder?: unknown;
}

/**
 * A vocabulary entry → the bytes it stands for. Byte-level BPE (GPT-2, cl100k, Llama 3, ours) maps
 * each byte to a printable character; SentencePiece-style BPE (Llama 2, Mistral, TinyLlama) writes
 * spaces as "▁" and bytes without a token of their own as "<0xNN>" (byte fallback).
 */
function tokenBytesReader(json: TokenizerJson): (token: string) => Uint8Array {
  if (JSON.stringify([json.pre_tokenizer, json.decoder]).includes('"ByteLevel"')) return tokenStringToBytes;
  const utf8 = new TextEncoder();
  return (token) => {
    const byte = json.model.byte_fallback ? /^<0x([0-9A-Fa-f]{2})>$/.exec(token) : null;
    return byte ? Uint8Array.of(parseInt(byte[1], 16)) : utf8.encode(token.replaceAll("\u2581", " "));
  };
}

/** Leading spaces the tokenizer's decoder strips from a whole text (SentencePiece's added dummy prefix). */
function strippedPrefix(json: TokenizerJson): number {
  const decoders = (json.decoder as { type?: string; decoders?: unknown[] } | undefined)?.decoders ?? [json.decoder];
  const strip = decoders.find((d) => (d as { type?: string } | null)?.type === "Strip") as { content?: string; start?: number } | undefined;
  return strip?.content === " " ? (strip.start ?? 0) : 0;
}

export interface TokenizerConfig {
  bos_token?: string | null;
  eos_token?: string | null;
  chat_template?: string;
  [key: string]: unknown;
}

function parseTokenizerJson(json: unknown, source: string): TokenizerJson {
  const fail = (why: string): never => {
    throw new TokenizerError(`${source}: malformed tokenizer.json (${why})`);
  };
  if (typeof json !== "object" || json === null) fail("not a JSON object");
  const t = json as Partial<TokenizerJson>;
  if (!t.model || t.model.type !== "BPE") fail('model.type must be "BPE"');
  if (typeof t.model!.vocab !== "object" || t.model!.vocab === null) fail("model.vocab missing");
  if (!Array.isArray(t.model!.merges)) fail("model.merges missing");
  if (t.added_tokens !== undefined && !Array.isArray(t.added_tokens)) fail("added_tokens is not an array");
  return t as TokenizerJson;
}

/** Characters of text encoded between two yields to the event loop (encodeAsync). */
const ENCODE_SLICE = 4096;

const LETTER = /\p{L}/u;

/**
 * Where text can be cut without changing its tokens: before a space that follows a letter and
 * precedes one. Byte-level BPE pre-tokenizers (GPT-2, cl100k, Llama 3) keep " word" as one piece
 * and end the previous one at the letter, so the pieces on either side are encoded alike alone.
 */
function cutPoints(text: string, every: number): number[] {
  const cuts: number[] = [];
  let from = every;
  while (from < text.length) {
    let i = text.indexOf(" ", from);
    while (i > 0 && i + 1 < text.length && !(LETTER.test(text[i - 1]) && LETTER.test(text[i + 1]))) i = text.indexOf(" ", i + 1);
    if (i <= 0 || i + 1 >= text.length) break;
    cuts.push(i);
    from = i + every;
  }
  return cuts;
}

export class Tokenizer {
  readonly vocabSize: number;
  /** Bytes of the longest token: a text of more bytes than n × this has more than n tokens. */
  readonly maxTokenBytes: number;
  /** Special token text → id (e.g. "<|endoftext|>"). */
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly eosId: number | undefined;
  readonly bosId: number | undefined;
  private readonly bytesById: Uint8Array[];
  private readonly specialIds: ReadonlySet<number>;
  /** Whether text may be encoded in slices (encodeAsync): byte-level pre-tokenization, nothing added around it. */
  private readonly sliceable: boolean;
  private readonly stripPrefix: number;

  private constructor(
    private readonly hf: HfTokenizer,
    json: TokenizerJson,
    readonly config: TokenizerConfig,
  ) {
    const added = json.added_tokens ?? [];
    const utf8 = new TextEncoder();
    const maxId = Math.max(...Object.values(json.model.vocab), ...added.map((a) => a.id));
    this.vocabSize = maxId + 1;
    this.bytesById = new Array(this.vocabSize).fill(new Uint8Array(0));
    const addedIds = new Set(added.map((a) => a.id));
    const bytesOf = tokenBytesReader(json);
    for (const [token, id] of Object.entries(json.model.vocab)) {
      if (!addedIds.has(id)) this.bytesById[id] = bytesOf(token);
    }
    const post = (json.post_processor as { type?: string } | null | undefined)?.type;
    this.sliceable = bytesOf === tokenStringToBytes && !json.normalizer && (!post || post === "ByteLevel");
    this.stripPrefix = strippedPrefix(json);
    for (const a of added) this.bytesById[a.id] = utf8.encode(a.content);
    this.maxTokenBytes = Math.max(1, ...this.bytesById.map((b) => b.length));
    const specials = added.filter((a) => a.special !== false);
    this.specialTokens = new Map(specials.map((a) => [a.content, a.id]));
    this.specialIds = new Set(specials.map((a) => a.id));
    this.eosId = config.eos_token ? this.specialTokens.get(config.eos_token) : undefined;
    this.bosId = config.bos_token ? this.specialTokens.get(config.bos_token) : undefined;
  }

  /** Build from parsed tokenizer.json (+ tokenizer_config.json); `source` names the file in errors. */
  static fromJSON(json: unknown, config: TokenizerConfig = {}, source = "tokenizer.json"): Tokenizer {
    const parsed = parseTokenizerJson(json, source);
    let hf: HfTokenizer;
    try {
      hf = new HfTokenizer(parsed as never, config as never);
    } catch (err) {
      throw new TokenizerError(`${source}: malformed tokenizer.json (${(err as Error).message})`);
    }
    return new Tokenizer(hf, parsed, config);
  }

  /**
   * Text → ids. Special-token text such as "<|endoftext|>" becomes its special id. `addSpecial` adds
   * what the tokenizer's post-processor adds around a text (Llama 2's <s>), as Hugging Face's
   * tokenizer(text) does: for raw prompts, not for chat templates, which write their own.
   */
  encode(text: string, { addSpecial = false } = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: addSpecial }).ids;
  }

  /**
   * encode(), a slice at a time with a yield to the event loop between slices, so a long prompt does
   * not stall other requests. Gives exactly encode()'s ids (slices end where the pre-tokenizer cuts).
   * Tokenizers that normalize the whole text or add tokens around it are encoded in one piece.
   */
  async encodeAsync(text: string, options: { addSpecial?: boolean } = {}): Promise<number[]> {
    if (text.length <= ENCODE_SLICE || !this.sliceable) return this.encode(text, options);
    const ids: number[] = [];
    let start = 0;
    for (const cut of [...cutPoints(text, ENCODE_SLICE), text.length]) {
      for (const id of this.encode(text.slice(start, cut))) ids.push(id);
      start = cut;
      await new Promise((r) => setTimeout(r, 0));
    }
    return ids;
  }

  /** The fewest tokens `text` can be: cheap (its UTF-8 length), for refusing over-long input before encoding it. */
  minTokens(text: string): number {
    let bytes = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? 2 : 3; // a surrogate pair is 4 bytes, 2 + 2
    }
    return Math.ceil(bytes / this.maxTokenBytes);
  }

  decode(ids: Iterable<number>, { skipSpecial = false } = {}): string {
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    let text = "";
    for (const id of ids) {
      if (skipSpecial && this.specialIds.has(id)) continue;
      text += decoder.decode(this.tokenBytes(id), { stream: true });
    }
    return text + decoder.decode();
  }

  /** decode() of a whole text as Hugging Face's decode() gives it (SentencePiece's dummy-prefix space stripped). */
  decodeText(ids: number[]): string {
    const text = this.decode(ids);
    let cut = 0;
    while (cut < this.stripPrefix && text[cut] === " ") cut++;
    return text.slice(cut);
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  tokenBytes(id: number): Uint8Array {
    const bytes = this.bytesById[id];
    if (bytes === undefined || !Number.isInteger(id)) throw new TokenizerError(`token id ${id} is out of range`);
    return bytes;
  }

  /** Incremental decoder for streaming: never emits part of a multi-byte character. */
  streamDecoder({ skipSpecial = false } = {}): StreamDecoder {
    const empty = new Uint8Array(0);
    return new StreamDecoder((id) => (skipSpecial && this.specialIds.has(id) ? empty : this.tokenBytes(id)));
  }
}
