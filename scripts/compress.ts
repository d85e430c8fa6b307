// Vocabulary compression for any checkpoint (the compact-tokenizer step of PanGu-π Pro, formula 1,
// applied to a Hugging Face folder rather than only to our cl100k models): count the tokens of a
// corpus as the model's own tokenizer encodes it, keep the N most frequent with the specials, the
// 256 byte tokens and the intermediates their merges need (scripts/tokenizer/compress.ts), and
// write a folder the server serves: the pruned tokenizer, the embedding and LM-head rows of the kept
// ids copied byte for byte in their dtype (no conversion), the ids in the configs renumbered,
// vocab_map.json (new id → original id) and a coverage report.
//
//   npm run compress -- --model DIR --corpus DIR|FILE... --keep N --out DIR
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync, closeSync, copyFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { encodeSafetensors, parseSafetensors, readSafetensorsFolder, SAFETENSORS_FILE, SAFETENSORS_INDEX } from "../src/formats/safetensors.js";
import type { TensorData, WeightDescription } from "../src/formats/weights.js";
import { Tokenizer, type TokenizerConfig } from "../src/tokenizer/tokenizer.js";
import { compressVocabulary, type CompressResult } from "./tokenizer/compress.js";
import { normalizeText, readBooks } from "./tokenizer/corpus.js";
import { readJsonFile } from "./tokenizer/files.js";
import { parseFlags, runMain } from "./tokenizer/cli.js";

const USAGE = `
usage: npm run compress -- --model DIR --corpus DIR|FILE... --keep N --out DIR
Prune a model's vocabulary to the tokens a corpus uses and write a folder the server serves.
  --model DIR    a Hugging Face folder: config.json, tokenizer.json (byte-level BPE, or BPE with
                 byte fallback), model.safetensors or model.safetensors.index.json (F32, F16, BF16)
  --corpus ...   text to count tokens on: folders of corpus shards (*.jsonl.gz, as npm run data:fetch
                 writes; books normalised as the pipeline does) or of *.txt files, or such files
  --keep N       the compact vocabulary's size: specials, the 256 byte tokens, then the most frequent
                 tokens with the intermediate tokens their merges need
  --out DIR      the new folder (created; replaced only if an earlier compress wrote it)
Writes config.json, tokenizer.json, tokenizer_config.json, generation_config.json (when the model has
one), chat_template.jinja and special_tokens_map.json (copied), the weights in the model's shard
layout, vocab_map.json (new id → original id), report.md and report.json. Not copied: tokenizer.model,
vocab.json, merges.txt (the original vocabulary's slow-tokenizer files). GGUF input is refused (see README).
`;

export class CompressError extends Error {}

export interface CompressOptions {
  model: string;
  corpus: string[];
  keep: number;
  out: string;
}

/** The command line as options, or CompressError saying which flag is wrong. */
export function parseCompressArgs(argv: string[]): CompressOptions {
  const { flags, positional } = parseFlags(argv, USAGE);
  const known = new Set(["model", "corpus", "keep", "out"]);
  for (const key of flags.keys()) if (!known.has(key)) throw new CompressError(`unknown flag --${key} (see --help)`);
  for (const key of known) if (!flags.has(key) || flags.get(key) === "true") throw new CompressError(`--${key} is required (see --help)`);
  const keep = Number(flags.get("keep"));
  if (!Number.isSafeInteger(keep) || keep <= 0) throw new CompressError(`--keep must be a positive integer, got ${JSON.stringify(flags.get("keep"))}`);
  // Further corpus files follow --corpus as positionals (--corpus a.txt b.txt).
  return { model: flags.get("model")!, corpus: [flags.get("corpus")!, ...positional], keep, out: flags.get("out")! };
}

/** The corpus's texts: books of *.jsonl.gz shards (normalised as every corpus script does) and *.txt files as they are. */
async function* corpusTexts(paths: string[]): AsyncGenerator<string> {
  for (const path of paths) {
    const files = statSync(path).isDirectory()
      ? readdirSync(path).filter((f) => f.endsWith(".jsonl.gz") || f.endsWith(".txt")).sort().map((f) => join(path, f))
      : [path];
    if (files.length === 0) throw new CompressError(`--corpus ${path}: no *.jsonl.gz shards or *.txt files in it`);
    for (const file of files) {
      if (file.endsWith(".jsonl.gz")) for await (const book of readBooks(file)) yield normalizeText(book.text);
      else yield readFileSync(file, "utf8");
    }
  }
}

/** Tokens per id over the corpus, with its bytes and token count. */
async function countTokens(tokenizer: Tokenizer, paths: string[]) {
  const counts = new Array<number>(tokenizer.vocabSize).fill(0);
  let bytes = 0, tokens = 0, texts = 0;
  for await (const text of corpusTexts(paths)) {
    for (const id of tokenizer.encode(text)) counts[id]++;
    bytes += Buffer.byteLength(text);
    texts++;
  }
  for (const c of counts) tokens += c;
  if (tokens === 0) throw new CompressError(`--corpus ${paths.join(" ")}: no text`);
  return { counts, bytes, tokens, texts };
}

/** The model's folder as the readers take it (src/formats/), and the refusals compress owes a user. */
function readModelFolder(dir: string) {
  const has = (file: string) => existsSync(join(dir, file));
  const safetensors = has(SAFETENSORS_FILE) || has(SAFETENSORS_INDEX);
  const gguf = dir.endsWith(".gguf") || (!safetensors && existsSync(dir) && statSync(dir).isDirectory() && readdirSync(dir).some((f) => f.endsWith(".gguf")));
  if (gguf) {
    // A GGUF's metadata keeps no value types once parsed (src/formats/gguf.ts), so writing one back
    // faithfully needs a writer of its own: compress the Hugging Face folder it came from instead.
    throw new CompressError(`--model ${dir}: GGUF input is not supported by compress; give the model's Hugging Face folder (config.json, tokenizer.json, safetensors)`);
  }
  if (!has("config.json")) throw new CompressError(`--model ${dir}: no config.json (a Hugging Face folder is needed)`);
  if (!safetensors) throw new CompressError(`--model ${dir}: no ${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX} (compress reads safetensors checkpoints)`);
  if (!has("tokenizer.json")) throw new CompressError(`--model ${dir}: no tokenizer.json`);
  const optional = (file: string) => (has(file) ? (readJsonFile(join(dir, file)) as Record<string, unknown>) : undefined);
  return {
    dir,
    config: readJsonFile(join(dir, "config.json")) as Record<string, unknown>,
    tokenizerJson: readJsonFile(join(dir, "tokenizer.json")) as Record<string, unknown>,
    tokenizerConfig: (optional("tokenizer_config.json") ?? {}) as TokenizerConfig,
    hasTokenizerConfig: has("tokenizer_config.json"),
    generationConfig: optional("generation_config.json"),
    read: async (path: string) => new Uint8Array(readFileSync(join(dir, path))),
  };
}

/** The ids a config names (a number or a list of them), renumbered; an id outside the compact vocabulary is an error naming the field. */
function remapIds(json: Record<string, unknown>, fields: string[], newIdOf: Map<number, number>, file: string): Record<string, unknown> {
  const out = { ...json };
  for (const field of fields) {
    const v = json[field];
    if (v === undefined || v === null) continue;
    const one = (id: unknown) => {
      const n = typeof id === "number" ? newIdOf.get(id) : undefined;
      if (n === undefined) throw new CompressError(`${file}: "${field}" ${JSON.stringify(id)} is not a token the compact vocabulary keeps`);
      return n;
    };
    out[field] = Array.isArray(v) ? v.map(one) : one(v);
  }
  return out;
}

/** tokenizer_config.json's added_tokens_decoder (id → token) with the new ids. */
function remapAddedTokensDecoder(config: TokenizerConfig, newIdOf: Map<number, number>): TokenizerConfig {
  const decoder = config.added_tokens_decoder as Record<string, unknown> | undefined;
  if (!decoder) return config;
  const entries = Object.entries(decoder).map(([id, token]) => {
    const n = newIdOf.get(Number(id));
    if (n === undefined) throw new CompressError(`tokenizer_config.json: "added_tokens_decoder" names id ${id}, not a token the compact vocabulary keeps`);
    return [String(n), token];
  });
  return { ...config, added_tokens_decoder: Object.fromEntries(entries) };
}

/** The kept rows of an embedding-shaped tensor ([rows, dim]), copied byte for byte in its own dtype. */
function keepRows(t: TensorData, rows: number[]): TensorData {
  const rowBytes = t.bytes.byteLength / t.shape[0];
  const bytes = new Uint8Array(rows.length * rowBytes);
  rows.forEach((r, i) => bytes.set(t.bytes.subarray(r * rowBytes, (r + 1) * rowBytes), i * rowBytes));
  return { ...t, shape: [rows.length, ...t.shape.slice(1)], bytes };
}

const VOCAB_ROWS = ["model.embed_tokens.weight", "lm_head.weight"];

/** Each weight file of the folder rewritten with the vocabulary rows remapped; the index's weight_map unchanged. */
async function writeWeights(read: (p: string) => Promise<Uint8Array>, d: WeightDescription, vocabMap: number[], out: string): Promise<number> {
  let total = 0;
  for (const file of d.files) {
    const tensors = parseSafetensors(await read(file), file); // all of the file's tensors (a tied model's copy of the head too)
    for (const name of VOCAB_ROWS) {
      const t = tensors.get(name);
      if (t) tensors.set(name, keepRows(t, vocabMap));
    }
    const fd = openSync(join(out, file), "w");
    try {
      for (const piece of encodeSafetensors(tensors)) writeSync(fd, piece);
    } finally {
      closeSync(fd);
    }
    total += [...tensors.values()].reduce((n, t) => n + t.bytes.byteLength, 0);
  }
  return total;
}

interface Report {
  model: string;
  tokenizer: "byte-level BPE" | "SentencePiece-style BPE with byte fallback";
  corpus: { paths: string[]; texts: number; bytes: number };
  vocabulary: { before: number; after: number; embedding_rows_before: number };
  selection: CompressResult["stats"];
  /** Share of the corpus's tokens (the original tokenization) that are kept tokens. */
  coverage: number;
  tokens: { before: number; after: number; per_byte_before: number; per_byte_after: number; ratio: number };
  parameters: { before: number; after: number; embedding_before: number; embedding_after: number };
  weight_bytes: { before: number; after: number };
}

function reportMarkdown(r: Report): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`, n = (x: number) => x.toLocaleString("en");
  return [
    `# Compact vocabulary: ${r.model}`,
    "",
    `Written by \`npm run compress\` from ${n(r.corpus.texts)} texts (${n(r.corpus.bytes)} bytes: ${r.corpus.paths.join(", ")}), counted with the model's own tokenizer (${r.tokenizer}).`,
    `Kept: the specials, the 256 byte tokens, the ${n(r.selection.kept_by_frequency)} most frequent tokens and the ${n(r.selection.added_as_intermediates)} intermediate tokens their merges need.`,
    "",
    "| | vocabulary | corpus tokens | tokens/byte | parameters | embedding + head parameters | weight bytes |",
    "|---|---|---|---|---|---|---|",
    `| original | ${n(r.vocabulary.before)} (${n(r.vocabulary.embedding_rows_before)} rows) | ${n(r.tokens.before)} | ${r.tokens.per_byte_before.toFixed(4)} | ${n(r.parameters.before)} | ${n(r.parameters.embedding_before)} | ${n(r.weight_bytes.before)} |`,
    `| compact | ${n(r.vocabulary.after)} | ${n(r.tokens.after)} | ${r.tokens.per_byte_after.toFixed(4)} | ${n(r.parameters.after)} | ${n(r.parameters.embedding_after)} | ${n(r.weight_bytes.after)} |`,
    "",
    `The kept tokens cover ${pct(r.coverage)} of the corpus's tokens as the original tokenizer encodes it; the compact tokenizer needs ${r.tokens.ratio.toFixed(3)}× the tokens.`,
    `Frequent tokens left out: ${r.selection.skipped_for_size} whose intermediates did not fit, ${r.selection.not_built_by_merges} that BPE does not build from their characters.`,
    "",
  ].join("\n");
}

/** Compress `opts.model` into `opts.out`; returns the report (also written there). */
export async function compressModel(opts: CompressOptions, log: (line: string) => void = () => {}): Promise<Report> {
  if (resolve(opts.out) === resolve(opts.model)) throw new CompressError(`--out ${opts.out} is the model folder itself`);
  if (existsSync(opts.out) && (!statSync(opts.out).isDirectory() || (readdirSync(opts.out).length > 0 && !existsSync(join(opts.out, "vocab_map.json"))))) {
    throw new CompressError(`--out ${opts.out} exists and is not a folder compress wrote (no vocab_map.json): not replaced`);
  }
  for (const path of opts.corpus) if (!existsSync(path)) throw new CompressError(`--corpus ${path}: no such file or folder`);
  const m = readModelFolder(opts.model);
  const description = await readSafetensorsFolder(m.read, m.config);
  const tokenizer = Tokenizer.fromJSON(m.tokenizerJson, m.tokenizerConfig, join(opts.model, "tokenizer.json"));
  if (tokenizer.vocabSize > description.arch.vocab) throw new CompressError(`${opts.model}: tokenizer.json has ${tokenizer.vocabSize} tokens, more than the embedding's ${description.arch.vocab} rows`);
  if (opts.keep >= tokenizer.vocabSize) throw new CompressError(`--keep ${opts.keep} is not below the model's vocabulary (${tokenizer.vocabSize} tokens): nothing to prune`);

  log(`counting tokens of ${opts.corpus.join(" ")} with ${opts.model}'s tokenizer`);
  const corpus = await countTokens(tokenizer, opts.corpus);
  let result: CompressResult;
  try {
    result = compressVocabulary(m.tokenizerJson, corpus.counts, { vocab: opts.keep });
  } catch (err) {
    throw new CompressError(`${join(opts.model, "tokenizer.json")}: ${(err as Error).message}`);
  }
  const tmp = `${opts.out}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await writeFolder(tmp, m, description, result);
    log(`encoding the corpus with the compact tokenizer`);
    const compact = Tokenizer.fromJSON(result.tokenizerJson, m.tokenizerConfig);
    let after = 0;
    for await (const text of corpusTexts(opts.corpus)) after += compact.encode(text).length;
    const d = description.arch, params = [...description.tensors.values()].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const embedding = (rows: number) => (d.tiedHead ? 1 : 2) * rows * d.dim;
    const fileBytes = (dir: string) => description.files.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    const report: Report = {
      model: basename(resolve(opts.model)),
      tokenizer: (m.tokenizerJson.model as { byte_fallback?: boolean }).byte_fallback ? "SentencePiece-style BPE with byte fallback" : "byte-level BPE",
      corpus: { paths: opts.corpus, texts: corpus.texts, bytes: corpus.bytes },
      vocabulary: { before: tokenizer.vocabSize, after: result.vocabMap.length, embedding_rows_before: d.vocab },
      selection: result.stats,
      coverage: result.stats.coverage,
      tokens: { before: corpus.tokens, after, per_byte_before: corpus.tokens / corpus.bytes, per_byte_after: after / corpus.bytes, ratio: after / corpus.tokens },
      parameters: { before: params, after: params - embedding(d.vocab) + embedding(result.vocabMap.length), embedding_before: embedding(d.vocab), embedding_after: embedding(result.vocabMap.length) },
      weight_bytes: { before: fileBytes(opts.model), after: fileBytes(tmp) },
    };
    writeFileSync(join(tmp, "report.json"), JSON.stringify(report, null, 2) + "\n");
    writeFileSync(join(tmp, "report.md"), reportMarkdown(report));
    rmSync(opts.out, { recursive: true, force: true });
    renameSync(tmp, opts.out);
    return report;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The compact folder's files: tokenizer, configs with the ids renumbered, vocab_map.json, the weights (in the model's shard layout). */
async function writeFolder(dir: string, m: ReturnType<typeof readModelFolder>, description: WeightDescription, result: CompressResult): Promise<void> {
  const { vocabMap } = result;
  const newIdOf = new Map(vocabMap.map((old, id) => [old, id]));
  const writeJson = (file: string, value: unknown) => writeFileSync(join(dir, file), JSON.stringify(value, null, 2) + "\n");
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(result.tokenizerJson));
  const ids = ["bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"];
  writeJson("config.json", { ...remapIds(m.config, ids, newIdOf, "config.json"), vocab_size: vocabMap.length });
  if (m.generationConfig) writeJson("generation_config.json", remapIds(m.generationConfig, ids, newIdOf, "generation_config.json"));
  if (m.hasTokenizerConfig) writeJson("tokenizer_config.json", remapAddedTokensDecoder(m.tokenizerConfig, newIdOf));
  for (const file of ["chat_template.jinja", "special_tokens_map.json"]) if (existsSync(join(m.dir, file))) copyFileSync(join(m.dir, file), join(dir, file));
  writeFileSync(join(dir, "vocab_map.json"), JSON.stringify(vocabMap));
  const weightBytes = await writeWeights(m.read, description, vocabMap, dir);
  if (description.files[0] !== SAFETENSORS_FILE) {
    const index = readJsonFile(join(m.dir, SAFETENSORS_INDEX)) as { metadata?: Record<string, unknown> };
    writeJson(SAFETENSORS_INDEX, { ...index, metadata: { ...index.metadata, total_size: weightBytes } });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runMain(async () => {
    const opts = parseCompressArgs(process.argv.slice(2));
    const r = await compressModel(opts, (line) => console.error(line));
    console.log(`${opts.out}: ${r.vocabulary.before} → ${r.vocabulary.after} tokens, coverage ${(r.coverage * 100).toFixed(2)}%, ${r.tokens.ratio.toFixed(3)}× the corpus's tokens`);
  });
}
