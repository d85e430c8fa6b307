// Encode the corpus with a tokenizer into pre-tokenized shards (uint16 for compact vocabularies,
// uint32 for the parent), one worker thread per corpus shard at a time. Also writes the token
// counts of the training split (counts.json), which the vocabulary compression reads.
//
//   npm run corpus:encode -- --tokenizer parent --out build/data/parent
//   npm run corpus:encode -- --tokenizer build/tokenizer-8k --out build/data/compact-8k
import { Worker } from "node:worker_threads";
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { DEFAULT_CORPUS_DIR, fileSize, listShards } from "./corpus.js";
import { loadTokenizer, resolveTokenizerDir } from "./files.js";
import { parseFlags, Progress, runMain } from "./cli.js";
import type { ShardHeader, ShardJob, WorkerMessage } from "./encode-shard.js";

const USAGE = `
usage: npm run corpus:encode -- [--corpus DIR] [--tokenizer DIR|parent] [--out DIR] [--workers N] [--max-mb-per-shard N]
Encode the corpus into uint16 token shards with a whole-book train/validation split, and count tokens.
  --corpus DIR        $CORPUS_DIR, else build/corpus, else ../shared/data/corpus
  --tokenizer         tokenizer folder, or "parent" for cl100k (default: parent)
  --out DIR           (default: build/data/parent)
  --workers N         worker threads (default: min(2, cores))
  --max-mb-per-shard  read at most this many MB of each shard, 0 = all (default: 0)
`;

export interface EncodeOptions {
  corpus: string;
  tokenizer: string;
  out: string;
  workers: number;
  maxMbPerShard: number;
}

interface ShardResult {
  counts: Float64Array;
  trainTextBytes: number;
  headers: Record<string, ShardHeader>;
}

// Worker threads do not inherit tsx's loader on Node 20: register it inside the worker first.
function tsWorkerSource(entry: URL): string {
  return `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })`;
}

function runWorker(job: ShardJob, onProgress: (bytes: number) => void): Promise<ShardResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(tsWorkerSource(new URL("./encode-shard.ts", import.meta.url)), { eval: true, workerData: job });
    worker.on("message", (msg: WorkerMessage) => {
      if (msg.type === "progress") onProgress(msg.compressedBytes);
      else resolve(msg);
    });
    worker.on("error", reject);
    worker.on("exit", (code) => code !== 0 && reject(new Error(`worker for ${job.shard} exited with ${code}`)));
  });
}

async function encodeCorpus(opts: EncodeOptions): Promise<void> {
  const shards = listShards(opts.corpus);
  const tokenizer = loadTokenizer(opts.tokenizer); // fail fast, before starting workers
  const dtype = tokenizer.vocabSize <= 65536 ? "uint16" : "uint32";
  const tmpOut = `${opts.out}.tmp`;
  rmSync(tmpOut, { recursive: true, force: true });
  mkdirSync(tmpOut, { recursive: true });

  const totalBytes = shards.reduce((sum, s) => sum + fileSize(s), 0);
  const progress = new Progress(`encode ${opts.tokenizer}`, totalBytes, "MB(gz)");
  let doneBytes = 0;
  const onProgress = (n: number) => progress.update((doneBytes += n));

  const counts = new Float64Array(tokenizer.vocabSize);
  const index: Record<string, { shard: string; tokens: number; text_bytes: number }[]> = { train: [], val: [] };
  let trainTextBytes = 0;
  const queue = [...shards];
  const maxBytes = opts.maxMbPerShard > 0 ? opts.maxMbPerShard * 1e6 : Infinity;
  const worker = async () => {
    for (let shard = queue.shift(); shard; shard = queue.shift()) {
      const job: ShardJob = { shard, tokenizer: resolveTokenizerDir(opts.tokenizer), out: tmpOut, dtype, maxBytes };
      const result = await runWorker(job, onProgress);
      result.counts.forEach((c, id) => (counts[id] += c));
      trainTextBytes += result.trainTextBytes;
      const name = shard.split("/").pop()!.replace(/\.jsonl\.gz$/, "");
      for (const split of ["train", "val"]) {
        const h = result.headers[split];
        if (h.tokens > 0) index[split].push({ shard: `${split}/${name}`, tokens: h.tokens, text_bytes: h.text_bytes });
        else for (const ext of [".bin", ".json"]) rmSync(join(tmpOut, split, name + ext));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, opts.workers) }, worker));
  } catch (err) {
    rmSync(tmpOut, { recursive: true, force: true }); // nothing half-written
    throw err;
  }
  progress.done();

  for (const split of ["train", "val"]) index[split].sort((a, b) => a.shard.localeCompare(b.shard));
  const summary = {
    tokenizer: opts.tokenizer,
    dtype,
    vocab_size: tokenizer.vocabSize,
    eot_id: tokenizer.specialTokens.get("<|endoftext|>"),
    splits: index,
    train_tokens: index.train.reduce((s, e) => s + e.tokens, 0),
    val_tokens: index.val.reduce((s, e) => s + e.tokens, 0),
    train_text_bytes: trainTextBytes,
    val_text_bytes: index.val.reduce((s, e) => s + e.text_bytes, 0),
  };
  writeFileSync(join(tmpOut, "index.json"), JSON.stringify(summary, null, 2));
  writeFileSync(join(tmpOut, "counts.json"), JSON.stringify({ train_text_bytes: trainTextBytes, counts: Array.from(counts) }));
  if (existsSync(opts.out)) rmSync(opts.out, { recursive: true });
  renameSync(tmpOut, opts.out);
  console.log(
    `${opts.out}: ${summary.train_tokens} train / ${summary.val_tokens} val tokens (${dtype}), ` +
      `${(summary.train_tokens / trainTextBytes).toFixed(4)} tokens/byte on train`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runMain(async () => {
    const { flags } = parseFlags(process.argv.slice(2), USAGE);
    await encodeCorpus({
      corpus: flags.get("corpus") ?? DEFAULT_CORPUS_DIR,
      tokenizer: flags.get("tokenizer") ?? "parent",
      out: flags.get("out") ?? "build/data/parent",
      workers: Number(flags.get("workers") ?? Math.min(2, cpus().length)),
      maxMbPerShard: Number(flags.get("max-mb-per-shard") ?? 0),
    });
  });
}
