// Vocabulary compression (PanGu-π Pro formula 1): keep the specials, all 256 single-byte tokens and
// the most frequent parent tokens, closed under the merges that build them, so every kept token is
// still produced by BPE. Ids are renumbered densely in parent order, which preserves merge priority.
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
  tokenizerConfig: Record<string, unknown>;
  /** New id → parent id, specials included. */
  vocabMap: number[];
  stats: {
    vocab_size: number;
    kept_by_frequency: number;
    added_as_intermediates: number;
    skipped_for_size: number;
    coverage: number;
  };
}

type TokenizerJsonShape = Parameters<typeof readVocab>[0] & Record<string, unknown>;

/** The parent tokens a token needs: itself and, recursively, the two halves of its merge. */
function closure(id: number, vocab: ParentVocab, kept: Set<number>, into: Set<number>): void {
  if (kept.has(id) || into.has(id)) return;
  into.add(id);
  const parts = vocab.madeFrom.get(id);
  if (parts) {
    closure(parts[0], vocab, kept, into);
    closure(parts[1], vocab, kept, into);
  }
}

export function compressVocabulary(parentJson: unknown, counts: ArrayLike<number>, target: CompressTarget): CompressResult {
  const json = parentJson as TokenizerJsonShape;
  const vocab = readVocab(json);
  const specialIds = new Set(vocab.specials.map((s) => s.id));
  const limit = target.vocab !== undefined ? target.vocab - vocab.specials.length : Infinity;
  const coverageGoal = target.coverage ?? Infinity;
  if (limit === Infinity && coverageGoal === Infinity) throw new Error("give --vocab or --coverage");

  let total = 0;
  for (let id = 0; id < counts.length; id++) if (!specialIds.has(id)) total += counts[id];
  const countOf = (id: number) => counts[id] ?? 0;

  const kept = new Set<number>();
  for (const [token, id] of vocab.idOf) if (Array.from(token).length === 1) kept.add(id);
  if (kept.size !== 256) throw new Error(`expected 256 single-byte tokens, found ${kept.size}`);
  if (limit < kept.size) throw new Error(`--vocab must leave room for 256 byte tokens and ${vocab.specials.length} specials`);
  let covered = [...kept].reduce((s, id) => s + countOf(id), 0);

  const byFrequency = [...vocab.idOf.values()]
    .filter((id) => countOf(id) > 0 && !kept.has(id))
    .sort((a, b) => countOf(b) - countOf(a) || a - b);
  let keptByFrequency = 0;
  let addedAsIntermediates = 0;
  let skipped = 0;
  for (const id of byFrequency) {
    if (kept.size >= limit || covered / total >= coverageGoal) break;
    if (kept.has(id)) continue;
    const needed = new Set<number>();
    closure(id, vocab, kept, needed);
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

  // Dense renumbering in parent order (= merge priority order for cl100k), specials last.
  const order = [...kept].sort((a, b) => a - b);
  const vocabMap = [...order, ...vocab.specials.map((s) => s.id)];
  const newVocab: Record<string, number> = {};
  order.forEach((parentId, newId) => (newVocab[vocab.tokenOf.get(parentId)!] = newId));
  const addedTokens = (json.added_tokens ?? []).map((a, i) => ({ ...a, id: order.length + i }));
  for (const a of addedTokens) newVocab[a.content] = a.id;
  const keptTokens = new Set(order.map((id) => vocab.tokenOf.get(id)!));
  const merges = vocab.merges
    .filter(([l, r]) => keptTokens.has(l + r) && keptTokens.has(l) && keptTokens.has(r))
    .map(([l, r]) => `${l} ${r}`);

  const tokenizerJson = {
    ...json,
    added_tokens: addedTokens,
    model: { ...(json.model as object), vocab: newVocab, merges },
  };
  const tokenizerConfig = {
    tokenizer_class: "PreTrainedTokenizerFast",
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
    bos_token: "<|endoftext|>",
    eos_token: "<|endoftext|>",
    unk_token: null,
  };
  const result: CompressResult = {
    tokenizerJson,
    tokenizerConfig,
    vocabMap,
    stats: {
      vocab_size: vocabMap.length,
      kept_by_frequency: keptByFrequency,
      added_as_intermediates: addedAsIntermediates,
      skipped_for_size: skipped,
      coverage: covered / total,
    },
  };
  const unreachable = unreachableTokens(tokenizerJson);
  if (unreachable.length > 0) throw new Error(`closure failed: ${unreachable.length} kept tokens are unreachable`);
  return result;
}

/** Kept tokens that BPE over their own bytes does not turn back into exactly themselves. */
export function unreachableTokens(tokenizerJson: unknown): string[] {
  const vocab = readVocab(tokenizerJson as TokenizerJsonShape);
  const ranks = mergeRanks(vocab.merges);
  const bad: string[] = [];
  for (const [token, id] of vocab.idOf) {
    const ids = bpeEncode(Array.from(token), ranks, vocab.idOf);
    if (ids.length !== 1 || ids[0] !== id) bad.push(token);
  }
  return bad;
}

function writeTokenizerFolder(dir: string, result: CompressResult): void {
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, "tokenizer.json"), JSON.stringify(result.tokenizerJson));
  writeFileSync(join(tmp, "tokenizer_config.json"), JSON.stringify(result.tokenizerConfig, null, 2));
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
