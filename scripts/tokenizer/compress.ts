// Vocabulary compression (PanGu-π Pro formula 1): keep the specials, the 256 byte tokens and the most
// frequent parent tokens, closed under the merges that build them, so every kept token is still
// produced by BPE. Ids are renumbered densely in parent order, which preserves merge priority. Here
// for our own cl100k pipeline; scripts/compress.ts applies the same to any model's own tokenizer.
//
//   npm run tokenizer:compress -- --counts build/data/parent/counts.json --vocab 8192 --out build/tokenizer-8k
//   npm run tokenizer:compress -- --counts build/data/parent/counts.json --coverage 0.98 --out build/tokenizer-98
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { bpeEncode, mergeRanks, readVocab, type ParentVocab } from "./bpe.js";
import { loadTokenizerJson, readJsonFile } from "./files.js";
import { parseFlags, runMain } from "./cli.js";

const USAGE = `
usage: npm run tokenizer:compress -- [--counts FILE] (--vocab N | --coverage F) [--parent DIR] [--out DIR]
Keep the most frequent tokens of the parent vocabulary and write the compact tokenizer and vocab_map.json.
  --counts FILE   token counts from corpus:encode (default: build/data/parent/counts.json)
  --vocab N       tokens to keep (default: 8192), or
  --coverage F    the fewest tokens covering this fraction of the corpus
  --parent DIR    parent tokenizer (default: parent = cl100k)
  --out DIR       (default: build/tokenizer-<N>)
`;

export interface CompressTarget {
  /** Total vocabulary size including special tokens. */
  vocab?: number;
  /** Stop once kept tokens cover this share of the training tokens (parent tokenization). */
  coverage?: number;
}

export interface CompressResult {
  tokenizerJson: Record<string, unknown>;
  /** New id → parent id, specials included. */
  vocabMap: number[];
  stats: {
    vocab_size: number;
    kept_by_frequency: number;
    added_as_intermediates: number;
    skipped_for_size: number;
    /** Frequent tokens that BPE over their own characters does not build (reachable only whole, under ignore_merges): left out. */
    not_built_by_merges: number;
    coverage: number;
  };
}

/** tokenizer_config.json of a compact cl100k vocabulary (our own pipeline's, see tokenizer:compress). */
export const CL100K_TOKENIZER_CONFIG = {
  tokenizer_class: "PreTrainedTokenizerFast",
  add_prefix_space: false,
  clean_up_tokenization_spaces: false,
  bos_token: "<|endoftext|>",
  eos_token: "<|endoftext|>",
  unk_token: null,
};

type TokenizerJsonShape = Parameters<typeof readVocab>[0] & {
  model: { byte_fallback?: boolean };
  post_processor?: unknown;
  padding?: { pad_id?: number } | null;
} & Record<string, unknown>;

const BYTE_FALLBACK = /^<0x[0-9A-F]{2}>$/;

/**
 * The 256 tokens any text can fall back to, kept in every compact vocabulary: for byte-level BPE the
 * single-byte symbols, for SentencePiece-style BPE with byte fallback the <0xNN> tokens.
 */
function byteTokens(json: TokenizerJsonShape, vocab: ParentVocab): number[] {
  const byteFallback = json.model.byte_fallback === true;
  const ids = [...vocab.idOf].filter(([token]) => (byteFallback ? BYTE_FALLBACK.test(token) : Array.from(token).length === 1)).map(([, id]) => id);
  const kind = byteFallback ? "byte-fallback <0xNN> tokens" : "single-byte tokens";
  if (!byteFallback && !JSON.stringify([json.pre_tokenizer, json.decoder]).includes('"ByteLevel"')) {
    throw new Error("neither byte-level BPE nor BPE with byte fallback: text outside a compact vocabulary could not be encoded");
  }
  if (ids.length !== 256) throw new Error(`expected 256 ${kind}, found ${ids.length}`);
  return ids;
}

/**
 * The tokens BPE forms when it encodes `token`'s own characters: its characters and every merge
 * result on the way. Inside any text a token is built by exactly these merges (merges never cross
 * the boundaries of the final tokens, so the ones within it run in the same order as alone), hence
 * keeping them and the merges between them makes the compact tokenizer encode as the parent
 * wherever the parent's tokens are kept. null: BPE does not build it from its characters.
 */
function mergeClosure(token: string, vocab: ParentVocab, ranks: Map<string, number>): number[] | null {
  const chars = Array.from(token);
  if (chars.some((c) => !vocab.idOf.has(c))) return null;
  const formed: string[] = [];
  const ids = bpeEncode(chars, ranks, vocab.idOf, formed);
  if (ids.length !== 1 || ids[0] !== vocab.idOf.get(token)) return null;
  return [...chars, ...formed].map((t) => vocab.idOf.get(t)!);
}

/** A post-processor's special-token ids (TemplateProcessing, also inside a Sequence), renumbered. */
function remapPostProcessor(node: unknown, newId: (old: number) => number): unknown {
  if (Array.isArray(node)) return node.map((n) => remapPostProcessor(n, newId));
  if (typeof node !== "object" || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    out[key] = key === "special_tokens" && typeof value === "object" && value !== null
      ? Object.fromEntries(Object.entries(value as Record<string, { ids: number[] }>).map(([name, s]) => [name, { ...s, ids: s.ids.map(newId) }]))
      : remapPostProcessor(value, newId);
  }
  return out;
}

/**
 * Keep the specials, the 256 byte tokens and the most frequent tokens with the tokens their merges
 * form (mergeClosure), renumbered densely in parent order (which keeps merge priority and leaves
 * specials where they were relative to the rest). Byte-level BPE (GPT-2, cl100k, Llama 3, Qwen) and
 * SentencePiece-style BPE with byte fallback (Llama 2, Mistral, TinyLlama).
 */
export function compressVocabulary(parentJson: unknown, counts: ArrayLike<number>, target: CompressTarget): CompressResult {
  const json = parentJson as TokenizerJsonShape;
  const vocab = readVocab(json);
  const ranks = mergeRanks(vocab.merges);
  const specialIds = new Set(vocab.specials.map((s) => s.id));
  const limit = target.vocab !== undefined ? target.vocab - vocab.specials.length : Infinity;
  const coverageGoal = target.coverage ?? Infinity;
  if (limit === Infinity && coverageGoal === Infinity) throw new Error("give --vocab or --coverage");

  let total = 0;
  for (let id = 0; id < counts.length; id++) if (!specialIds.has(id)) total += counts[id];
  const countOf = (id: number) => counts[id] ?? 0;

  const kept = new Set<number>(byteTokens(json, vocab));
  if (limit < kept.size) throw new Error(`the vocabulary must leave room for 256 byte tokens and ${vocab.specials.length} specials`);
  let covered = [...kept].reduce((s, id) => s + countOf(id), 0);

  const byFrequency = [...vocab.idOf.values()]
    .filter((id) => countOf(id) > 0 && !kept.has(id))
    .sort((a, b) => countOf(b) - countOf(a) || a - b);
  let keptByFrequency = 0, addedAsIntermediates = 0, skipped = 0, notBuilt = 0;
  for (const id of byFrequency) {
    if (kept.size >= limit || covered / total >= coverageGoal) break;
    if (kept.has(id)) continue;
    const closure = mergeClosure(vocab.tokenOf.get(id)!, vocab, ranks);
    if (!closure) {
      notBuilt++;
      continue;
    }
    const needed = new Set(closure.filter((n) => !kept.has(n)));
    if (kept.size + needed.size > limit) {
      skipped++; // its intermediates would not fit: leave it out and refill with the next ones
      continue;
    }
    for (const n of needed) {
      kept.add(n);
      covered += countOf(n);
    }
    keptByFrequency++;
    addedAsIntermediates += needed.size - 1;
  }

  const vocabMap = [...kept, ...specialIds].sort((a, b) => a - b);
  const newIdOf = new Map(vocabMap.map((parentId, newId) => [parentId, newId]));
  const newId = (old: number) => {
    const id = newIdOf.get(old);
    if (id === undefined) throw new Error(`tokenizer.json: post-processor names id ${old}, not a special token`);
    return id;
  };
  const specialContent = new Map(vocab.specials.map((s) => [s.id, s.content]));
  const newVocab: Record<string, number> = {};
  vocabMap.forEach((parentId, id) => {
    const token = vocab.tokenOf.get(parentId) ?? specialContent.get(parentId)!;
    if (!specialIds.has(parentId) || token in json.model.vocab) newVocab[token] = id;
  });
  const keptTokens = new Set([...kept].map((id) => vocab.tokenOf.get(id)!));
  const merges = vocab.merges
    .filter(([l, r]) => keptTokens.has(l + r) && keptTokens.has(l) && keptTokens.has(r))
    .map(([l, r]) => `${l} ${r}`);

  const tokenizerJson: Record<string, unknown> = {
    ...json,
    added_tokens: (json.added_tokens ?? []).map((a) => ({ ...a, id: newId(a.id) })),
    post_processor: remapPostProcessor(json.post_processor ?? null, newId),
    model: { ...(json.model as object), vocab: newVocab, merges },
  };
  if (typeof json.padding?.pad_id === "number") tokenizerJson.padding = { ...json.padding, pad_id: newId(json.padding.pad_id) };
  const result: CompressResult = {
    tokenizerJson,
    vocabMap,
    stats: {
      vocab_size: vocabMap.length,
      kept_by_frequency: keptByFrequency,
      added_as_intermediates: addedAsIntermediates,
      skipped_for_size: skipped,
      not_built_by_merges: notBuilt,
      coverage: covered / total,
    },
  };
  const unreachable = unreachableTokens(tokenizerJson);
  if (unreachable.length > 0) throw new Error(`closure failed: ${unreachable.length} kept tokens are unreachable`);
  return result;
}

/** Kept tokens (byte tokens aside) that BPE over their own characters does not turn back into exactly themselves. */
export function unreachableTokens(tokenizerJson: unknown): string[] {
  const json = tokenizerJson as TokenizerJsonShape;
  const vocab = readVocab(json);
  const ranks = mergeRanks(vocab.merges);
  const bytes = new Set(byteTokens(json, vocab));
  return [...vocab.idOf].filter(([token, id]) => !bytes.has(id) && mergeClosure(token, vocab, ranks) === null).map(([token]) => token);
}

function writeTokenizerFolder(dir: string, result: CompressResult): void {
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, "tokenizer.json"), JSON.stringify(result.tokenizerJson));
  writeFileSync(join(tmp, "tokenizer_config.json"), JSON.stringify(CL100K_TOKENIZER_CONFIG, null, 2));
  writeFileSync(join(tmp, "vocab_map.json"), JSON.stringify(result.vocabMap));
  writeFileSync(join(tmp, "stats.json"), JSON.stringify(result.stats, null, 2));
  if (existsSync(dir)) rmSync(dir, { recursive: true });
  renameSync(tmp, dir);
}

export function readCounts(path: string): number[] {
  const data = readJsonFile(path) as { counts?: unknown };
  if (!Array.isArray(data.counts)) throw new Error(`${path}: no "counts" array (write it with npm run corpus:encode)`);
  return data.counts as number[];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runMain(async () => {
    const { flags } = parseFlags(process.argv.slice(2), USAGE);
    const counts = readCounts(flags.get("counts") ?? "build/data/parent/counts.json");
    const target: CompressTarget = flags.has("coverage")
      ? { coverage: Number(flags.get("coverage")) }
      : { vocab: Number(flags.get("vocab") ?? 8192) };
    const out = flags.get("out") ?? `build/tokenizer-${target.vocab ?? target.coverage}`;
    const result = compressVocabulary(loadTokenizerJson(flags.get("parent") ?? "parent"), counts, target);
    writeTokenizerFolder(out, result);
    console.log(`${out}: ${JSON.stringify(result.stats)}`);
  });
}
