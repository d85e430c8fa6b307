// Parity of an exported model folder against its PyTorch reference (parity/ written by export.py),
// in onnxruntime-web: fp32 max |Δlogit|, greedy continuations, and int8 vs fp32 on real text.
//   npm run parity -- model [--val-data build/data/compact-8k]
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { modelShapeFromConfig, type Decoder } from "../src/engine/decoder.js";
import { argmax } from "../src/engine/sampler.js";
import { createDecoder } from "../src/engine/ort/session.js";
import { ortGraph } from "../src/engine/backends.js";
import { nodeOrt } from "../src/node-runtime.js";
import { parseFlags, Progress, runMain } from "./tokenizer/cli.js";

const USAGE = `
usage: npm run parity -- [MODEL_DIR] [--val-data DIR]
Parity of an exported model folder against its PyTorch reference (needs the fp32 graph in the folder).
  MODEL_DIR         the folder (default: model)
  --val-data DIR    pre-tokenized validation data (default: build/data/compact-8k)
`;

export interface ParityCases {
  vocab_size: number;
  cases: (
    | { kind: "single"; prompt: number[]; steps: { input: number[]; row: number }[] }
    | { kind: "batch"; input_ids: number[][]; attention_mask: number[][]; steps: { input?: number[]; rows: number[] }[] }
  )[];
  greedy: { prompt: number[]; tokens: number[] }[];
}

export class ModelFolder {
  readonly config: Record<string, unknown>;
  readonly shape;
  readonly parity: ParityCases;
  private readonly logits: Float32Array;

  constructor(readonly dir: string) {
    this.config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    this.shape = modelShapeFromConfig(this.config, join(dir, "config.json"));
    this.parity = JSON.parse(readFileSync(join(dir, "parity/cases.json"), "utf8"));
    const bytes = readFileSync(join(dir, "parity/logits.f32"));
    this.logits = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  referenceRow(row: number): Float32Array {
    const v = this.shape.vocabSize;
    return this.logits.subarray(row * v, (row + 1) * v);
  }

  /** onnxruntime-web on `file` as the server runs it (its .tinylm.onnx graph when there is one), or on the standard graph itself. */
  async webDecoder(file: string, { standard = false } = {}): Promise<Decoder> {
    const read = async (path: string) => readFileSync(join(this.dir, path));
    const bytes = await read(file);
    const graph = standard ? { bytes, source: file } : await ortGraph(read, file, bytes);
    return createDecoder(nodeOrt(1), graph.bytes, this.shape, graph);
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Max |Δlogit| over every reference case (prefill, decode steps, left-padded batch of two). */
export async function parityError(folder: ModelFolder, dec: Decoder): Promise<number> {
  const V = folder.shape.vocabSize;
  let worst = 0;
  for (const c of folder.parity.cases) {
    if (c.kind === "single") {
      const cache = dec.newCache();
      for (const s of c.steps) {
        const [{ logits }] = await dec.step([{ cache, tokens: s.input }]);
        worst = Math.max(worst, maxAbsDiff(logits.subarray(logits.length - V), folder.referenceRow(s.row)));
      }
    } else {
      // The reference batch is left-padded; the engine pads the same way from unpadded rows.
      const caches = [dec.newCache(), dec.newCache()];
      let inputs = c.input_ids.map((ids, b) => ids.filter((_, j) => c.attention_mask[b][j] === 1));
      for (const s of c.steps) {
        const out = await dec.step(caches.map((cache, b) => ({ cache, tokens: s.input ? [s.input[b]] : inputs[b] })));
        out.forEach(({ logits }, b) => (worst = Math.max(worst, maxAbsDiff(logits.subarray(logits.length - V), folder.referenceRow(s.rows[b])))));
        inputs = [];
      }
    }
  }
  return worst;
}

export async function greedy(dec: Decoder, prompt: number[], n: number): Promise<number[]> {
  const V = dec.shape.vocabSize;
  const cache = dec.newCache();
  const out: number[] = [];
  let feed = prompt;
  for (let i = 0; i < n; i++) {
    const [{ logits }] = await dec.step([{ cache, tokens: feed }]);
    const next = argmax(logits.subarray(logits.length - V));
    out.push(next);
    feed = [next];
  }
  return out;
}

/** Per-token argmax and perplexity over windows of real text. */
export async function scoreText(dec: Decoder, tokens: number[], window = 256) {
  const V = dec.shape.vocabSize;
  const argmaxes: number[] = [];
  let nll = 0;
  let count = 0;
  const progress = new Progress("parity", tokens.length * 1e6, "tokens"); // Progress counts in millions
  for (let start = 0; start + 1 < tokens.length; start += window) {
    progress.update(start * 1e6);
    const chunk = tokens.slice(start, start + window + 1);
    const [{ logits }] = await dec.step([{ cache: dec.newCache(), tokens: chunk.slice(0, -1), logits: "all" }]);
    for (let i = 0; i < chunk.length - 1; i++) {
      const row = logits.subarray(i * V, (i + 1) * V);
      argmaxes.push(argmax(row));
      let max = -Infinity;
      for (const l of row) max = Math.max(max, l);
      let sum = 0;
      for (const l of row) sum += Math.exp(l - max);
      nll += max + Math.log(sum) - row[chunk[i + 1]];
      count++;
    }
  }
  progress.done();
  return { argmaxes, perplexity: Math.exp(nll / count), count };
}

/** The first `count` validation tokens of a pre-tokenized data folder (uint16 shards). */
export function validationTokens(dataDir: string, count: number): number[] {
  const index = JSON.parse(readFileSync(join(dataDir, "index.json"), "utf8"));
  const out: number[] = [];
  for (const e of index.splits.val) {
    const b = readFileSync(join(dataDir, `${e.shard}.bin`));
    out.push(...new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2));
    if (out.length >= count) break;
  }
  return out.slice(0, count);
}

export interface ParityReport {
  fp32_max_abs_logit_diff: number;
  fp32_greedy_matches: boolean;
  int8_top1_agreement: number;
  int8_perplexity_ratio: number;
  tokens: number;
}

export async function checkFolder(dir: string, valData: string, tokens = 2049): Promise<ParityReport> {
  if (!existsSync(join(dir, "onnx", "model.onnx"))) {
    throw new Error(`${dir}/onnx/model.onnx is not there (the folder was exported with --drop-fp32): its parity, ` +
      `measured at export, is in manifest.json; npm run export from the checkpoint writes the fp32 graph to check again`);
  }
  const folder = new ModelFolder(dir);
  const fp32 = await folder.webDecoder("onnx/model.onnx");
  const int8 = await folder.webDecoder("onnx/model_quantized.onnx");
  let greedyOk = true;
  for (const g of folder.parity.greedy) {
    const got = await greedy(fp32, g.prompt, g.tokens.length);
    greedyOk &&= got.every((t, i) => t === g.tokens[i]);
  }
  const text = validationTokens(valData, tokens);
  const a = await scoreText(fp32, text);
  const b = await scoreText(int8, text);
  return {
    fp32_max_abs_logit_diff: await parityError(folder, fp32),
    fp32_greedy_matches: greedyOk,
    int8_top1_agreement: a.argmaxes.filter((t, i) => t === b.argmaxes[i]).length / a.count,
    int8_perplexity_ratio: b.perplexity / a.perplexity,
    tokens: a.count,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runMain(async () => {
    const { flags, positional } = parseFlags(process.argv.slice(2), USAGE);
    const dir = positional[0] ?? "model";
    const report = await checkFolder(dir, flags.get("val-data") ?? "build/data/compact-8k");
    console.log(JSON.stringify(report, null, 2));
    const ok = report.fp32_max_abs_logit_diff <= 1e-3 && report.fp32_greedy_matches &&
      report.int8_top1_agreement >= 0.95 && Math.abs(report.int8_perplexity_ratio - 1) <= 0.03;
    if (!ok) throw new Error(`${dir}: parity check failed (fp32 ≤ 1e-3 and greedy equal; int8 top-1 ≥ 95%, perplexity within 3%)`);
    console.log(`${dir}: parity OK`);
  });
}
