// Worker: encode one corpus shard with one tokenizer. Writes <out>/<split>/<shard>.bin (token ids,
// little-endian, each book followed by the end-of-text token) and a JSON header beside it, and
// returns the token counts of the training books to the main thread.
import { parentPort, workerData } from "node:worker_threads";
import { createWriteStream, mkdirSync, writeFileSync, renameSync, type WriteStream } from "node:fs";
import { basename, join } from "node:path";
import { isValidationBook, normalizeText, readBooks } from "./corpus.js";
import { loadTokenizer } from "./files.js";

export interface ShardJob {
  shard: string;
  tokenizer: string;
  out: string;
  dtype: "uint16" | "uint32";
  /** Text bytes to take from this shard for the training split (validation gets a quarter); Infinity for all. */
  maxBytes: number;
}

export interface ShardHeader {
  dtype: "uint16" | "uint32";
  vocab_size: number;
  eot_id: number;
  tokens: number;
  text_bytes: number;
  /** One entry per book: [first token, token count incl. the end-of-text token, book id]. */
  documents: [number, number, string][];
}

export type WorkerMessage =
  | { type: "progress"; compressedBytes: number }
  | { type: "done"; counts: Float64Array; trainTextBytes: number; headers: Record<string, ShardHeader> };

class ShardWriter {
  private readonly stream: WriteStream;
  readonly header: ShardHeader;
  constructor(private readonly path: string, dtype: ShardHeader["dtype"], vocabSize: number, eotId: number) {
    this.stream = createWriteStream(`${path}.bin.tmp`);
    this.header = { dtype, vocab_size: vocabSize, eot_id: eotId, tokens: 0, text_bytes: 0, documents: [] };
  }
  async append(ids: number[], bookId: string, textBytes: number): Promise<void> {
    const array = this.header.dtype === "uint16" ? Uint16Array.from(ids) : Uint32Array.from(ids);
    this.header.documents.push([this.header.tokens, ids.length, bookId]);
    this.header.tokens += ids.length;
    this.header.text_bytes += textBytes;
    if (!this.stream.write(Buffer.from(array.buffer))) await new Promise<void>((r) => this.stream.once("drain", () => r()));
  }
  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    renameSync(`${this.path}.bin.tmp`, `${this.path}.bin`);
    writeFileSync(`${this.path}.json`, JSON.stringify(this.header));
  }
}

/** A sample-sized piece of a book: whole paragraphs up to about `maxBytes`. */
function clip(text: string, maxBytes: number): string {
  if (maxBytes === Infinity || Buffer.byteLength(text) <= maxBytes) return text;
  const cut = text.lastIndexOf("\n\n", maxBytes);
  return text.slice(0, cut > 0 ? cut + 1 : maxBytes);
}

async function encodeShard(job: ShardJob): Promise<void> {
  const tokenizer = loadTokenizer(job.tokenizer);
  const eot = tokenizer.specialTokens.get("<|endoftext|>");
  if (eot === undefined) throw new Error(`${job.tokenizer}: tokenizer has no <|endoftext|> token`);
  if (job.dtype === "uint16" && tokenizer.vocabSize > 65536) {
    throw new Error(`${job.tokenizer}: vocabulary of ${tokenizer.vocabSize} does not fit uint16`);
  }
  const name = basename(job.shard).replace(/\.jsonl\.gz$/, "");
  const writers: Record<string, ShardWriter> = {};
  for (const split of ["train", "val"]) {
    mkdirSync(join(job.out, split), { recursive: true });
    writers[split] = new ShardWriter(join(job.out, split, name), job.dtype, tokenizer.vocabSize, eot);
  }
  const counts = new Float64Array(tokenizer.vocabSize);
  const budget: Record<string, number> = { train: job.maxBytes, val: job.maxBytes / 4 };
  let trainTextBytes = 0;
  let pending = 0;
  const flushProgress = () => {
    parentPort!.postMessage({ type: "progress", compressedBytes: pending } satisfies WorkerMessage);
    pending = 0;
  };
  for await (const book of readBooks(job.shard, (n) => (pending += n))) {
    if (budget.train <= 0 && budget.val <= 0) break;
    const split = isValidationBook(book.id) ? "val" : "train";
    if (budget[split] <= 0) continue;
    const text = clip(normalizeText(book.text), budget[split]);
    const bytes = Buffer.byteLength(text);
    budget[split] -= bytes;
    const ids = tokenizer.encode(text);
    if (split === "train") {
      for (const id of ids) counts[id]++;
      trainTextBytes += bytes;
    }
    ids.push(eot);
    await writers[split].append(ids, book.id, bytes);
    flushProgress();
  }
  await writers.train.close();
  await writers.val.close();
  flushProgress();
  parentPort!.postMessage({
    type: "done",
    counts,
    trainTextBytes,
    headers: { train: writers.train.header, val: writers.val.header },
  } satisfies WorkerMessage);
}

if (parentPort && workerData) {
  encodeShard(workerData as ShardJob).catch((err: Error) => {
    throw err; // surfaces as the worker's "error" event in the main thread
  });
}
