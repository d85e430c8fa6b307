// Reading the shared book corpus: streaming JSONL.gz, text normalisation, and the whole-book
// train/validation split. Used by every corpus script so they all see the same text.
import { createReadStream, existsSync, readdirSync, statSync } from "node:fs";
import { createGunzip } from "node:zlib";
import { createInterface } from "node:readline";
import { createHash } from "node:crypto";
import { join } from "node:path";

/**
 * Where the pipeline reads the corpus: $CORPUS_DIR, else build/corpus (what `npm run data:fetch`
 * writes), else ../shared/data/corpus when it is there (the project's own machines), else build/corpus.
 */
function defaultCorpusDir(env: Record<string, string | undefined> = process.env): string {
  if (env.CORPUS_DIR) return env.CORPUS_DIR;
  for (const dir of ["build/corpus", "../shared/data/corpus"]) if (existsSync(dir)) return dir;
  return "build/corpus";
}
export const DEFAULT_CORPUS_DIR = defaultCorpusDir();
const SPLIT_SEED = "tinylm-edge-v1";
const VALIDATION_FRACTION = 0.04;

export interface Book {
  id: string;
  title: string;
  author: string;
  text: string;
  /** Corpus part, from the shard name: "stories" or "general". */
  source: string;
}

export class CorpusError extends Error {}

/** The corpus shards in name order; a missing or empty folder is an error naming it. */
export function listShards(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new CorpusError(`${dir}: cannot read corpus folder (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  const shards = names.filter((n) => n.endsWith(".jsonl.gz")).sort().map((n) => join(dir, n));
  if (shards.length === 0) throw new CorpusError(`${dir}: no *.jsonl.gz corpus shards found`);
  return shards;
}

export function fileSize(path: string): number {
  return statSync(path).size;
}

/**
 * Stream the books of one shard, one JSON line at a time (a shard is never held whole).
 * `onBytes` reports compressed bytes read, for progress bars.
 */
export async function* readBooks(path: string, onBytes?: (n: number) => void): AsyncGenerator<Book> {
  const source = /([a-z]+)-\d+\.jsonl\.gz$/.exec(path)?.[1] ?? "unknown";
  const raw = createReadStream(path);
  if (onBytes) raw.on("data", (chunk) => onBytes(chunk.length));
  const gunzip = createGunzip();
  const failed = new Promise<never>((_, reject) => {
    const fail = (err: Error) => reject(new CorpusError(`${path}: unreadable corpus shard (${err.message})`));
    raw.on("error", fail);
    gunzip.on("error", fail);
  });
  failed.catch(() => {}); // observed through the race below
  const lines = createInterface({ input: raw.pipe(gunzip), crlfDelay: Infinity });
  const iterator = lines[Symbol.asyncIterator]();
  let lineNo = 0;
  while (true) {
    const next = await Promise.race([iterator.next(), failed]);
    if (next.done) break;
    lineNo++;
    if (next.value.trim() === "") continue;
    let record: Partial<Book>;
    try {
      record = JSON.parse(next.value);
    } catch {
      throw new CorpusError(`${path}:${lineNo}: not a JSON line`);
    }
    if (typeof record.text !== "string" || typeof record.id !== "string") {
      throw new CorpusError(`${path}:${lineNo}: record lacks "id" or "text"`);
    }
    yield { id: record.id, title: record.title ?? "", author: record.author ?? "", text: record.text, source };
  }
}

/** Fixed-seed, whole-book split: a book is in validation when its seeded hash falls below the fraction. */
export function isValidationBook(id: string, seed = SPLIT_SEED, fraction = VALIDATION_FRACTION): boolean {
  const digest = createHash("sha256").update(`${seed}:${id}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32 < fraction;
}

// Lines at least this long are hard-wrapped prose; a paragraph of only shorter lines is verse,
// a table or a heading block and keeps its line breaks.
const WRAPPED_PROSE_MIN_LINE = 55;

/**
 * Normalise a Gutenberg text: CRLF → LF, un-wrap hard-wrapped paragraphs into one line each,
 * keep paragraph breaks (one blank line) and indented or short-line blocks (verse) as they are.
 */
export function normalizeText(text: string): string {
  const paragraphs = text
    .replace(/\r\n?/g, "\n")
    .split(/\n[ \t]*\n+/)
    .map((p) => p.replace(/^\n+|\s+$/g, ""))
    .filter((p) => p.trim() !== "");
  return paragraphs.map(unwrapParagraph).join("\n\n") + "\n";
}

function unwrapParagraph(paragraph: string): string {
  const lines = paragraph.split("\n").map((l) => l.trimEnd());
  if (lines.length === 1) return lines[0];
  const indented = lines.some((l) => /^\s/.test(l));
  const longest = Math.max(...lines.map((l) => l.length));
  if (indented || longest < WRAPPED_PROSE_MIN_LINE) return lines.join("\n");
  return lines.map((l) => l.trim()).join(" ");
}
