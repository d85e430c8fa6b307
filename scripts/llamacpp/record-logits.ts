// llama.cpp's logits on our GGUF fixtures, recorded once into test/fixtures/llamacpp-logits.json
// (test/llamacpp-logits.test.ts compares our kernels with them). Run by hand, never in CI, against a
// llama.cpp you built yourself from its public source (its docs/build.md; a CPU build is enough):
//
//   npx tsx scripts/llamacpp/record-logits.ts --llama-cpp ~/src/llama.cpp [--bin DIR] [--top 32]
//
// It compiles logits.c (ours, beside this file) against that tree's llama.h and its built libllama
// (--bin, default DIR/build/bin) and never builds llama.cpp. Recorded: the checkpoint fixtures'
// GGUF files (scripts/tinylm/checkpoints.py) fed their PyTorch reference's prompts and greedy
// continuations, and the shipped model as the bench's GGUF (bench/models.ts) fed validation text;
// per position, llama.cpp's top logits and the log-sum-exp of all of them (the file stays small and
// still gives each top token's probability). Files this llama.cpp cannot run as the model is meant
// are left out and the reason printed.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { benchModel, SHAPES } from "../../bench/models.js";
import { CHECKPOINT_ARCHS, checkpointFixtures } from "../../test/helpers/interop-fixtures.js";
import { validationTokens } from "../parity.js";
import { parseFlags, runMain } from "../tokenizer/cli.js";

const USAGE = `
usage: npx tsx scripts/llamacpp/record-logits.ts --llama-cpp DIR [--bin DIR] [--top N] [--out FILE]
  --llama-cpp DIR  a llama.cpp source tree you built (include/llama.h, ggml/include/)
  --bin DIR        where its libllama is (default: DIR/build/bin)
  --top N          logits kept per position (default: 32)
  --out FILE       (default: test/fixtures/llamacpp-logits.json)
`;

const ROOT = join(import.meta.dirname, "../..");

export interface RecordedRow {
  /** log Σ exp(logit) over the whole vocabulary. */
  logsumexp: number;
  /** The top logits, best first: [token id, logit]. */
  top: [number, number][];
}

export interface RecordedModel {
  /** Relative to the repository's build/ folder. */
  file: string;
  sha256: string;
  vocab: number;
  sequences: { tokens: number[]; from: number; rows: RecordedRow[] }[];
}

function compile(tree: string, bin: string): string {
  for (const header of ["include/llama.h", "ggml/include/ggml.h"]) {
    if (!existsSync(join(tree, header))) throw new Error(`${join(tree, header)}: not found; --llama-cpp takes a llama.cpp source tree`);
  }
  if (!existsSync(join(bin, "libllama.so"))) throw new Error(`${join(bin, "libllama.so")}: not found; build llama.cpp with shared libraries (its default) or give --bin`);
  const out = join(ROOT, "build/llamacpp/logits");
  mkdirSync(join(ROOT, "build/llamacpp"), { recursive: true });
  execFileSync("cc", ["-O1", `-I${join(tree, "include")}`, `-I${join(tree, "ggml/include")}`, join(import.meta.dirname, "logits.c"),
    `-L${bin}`, "-lllama", `-Wl,-rpath,${bin}`, "-o", out], { stdio: "inherit" });
  return out;
}

function rows(tool: string, file: string, tokens: number[], from: number, top: number): { vocab: number; rows: RecordedRow[] } {
  const raw = execFileSync(tool, [file, String(tokens.length), ...tokens.map(String)], { maxBuffer: 2 ** 30, stdio: ["ignore", "pipe", "pipe"] });
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), vocab = all.length / tokens.length;
  const out: RecordedRow[] = [];
  for (let p = from; p < tokens.length; p++) {
    const l = all.subarray(p * vocab, (p + 1) * vocab);
    let max = -Infinity;
    for (const x of l) max = Math.max(max, x);
    let z = 0;
    for (const x of l) z += Math.exp(x - max);
    const ids = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => l[b] - l[a]).slice(0, top);
    out.push({ logsumexp: round(max + Math.log(z)), top: ids.map((i) => [i, round(l[i])]) });
  }
  return { vocab, rows: out };
}

const round = (x: number) => Math.round(x * 1e5) / 1e5;
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

async function main(): Promise<void> {
  const { flags } = parseFlags(process.argv.slice(2), USAGE);
  const tree = flags.get("llama-cpp") ?? process.env.LLAMA_CPP_DIR;
  if (!tree) throw new Error("give --llama-cpp DIR (a llama.cpp source tree you built)");
  const tool = compile(tree, flags.get("bin") ?? join(tree, "build/bin"));
  const top = Number(flags.get("top") ?? 32);
  const models: RecordedModel[] = [];
  const record = (file: string, sequences: { tokens: number[]; from: number }[]) => {
    try {
      const recorded = sequences.map((s) => ({ ...s, ...rows(tool, file, s.tokens, s.from, top) }));
      models.push({ file: relative(join(ROOT, "build"), file), sha256: sha256(file), vocab: recorded[0].vocab, sequences: recorded.map(({ vocab: _, ...s }) => s) });
      console.log(`${relative(ROOT, file)}: ${recorded.reduce((n, s) => n + s.rows.length, 0)} positions`);
    } catch (err) {
      console.log(`${relative(ROOT, file)}: left out, llama.cpp could not run it (${String((err as { stderr?: Buffer }).stderr ?? err).trim().split("\n")[0]})`);
    }
  };
  const fixtures = checkpointFixtures();
  for (const arch of CHECKPOINT_ARCHS) {
    const dir = join(fixtures, `${arch}-gguf`);
    if (arch === "mistral") {
      // llama.cpp reads Mistral as "llama" and its llama graph attends the whole context: the
      // fixture's window (16) shorter than its prompts (24) makes those logits another model's.
      console.log(`${relative(ROOT, dir)}: left out, llama.cpp's "llama" graph has no sliding window`);
      continue;
    }
    const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8")) as { prompts: number[][]; greedy: number[][] };
    record(join(dir, "model.gguf"), ref.prompts.map((p, i) => ({ tokens: [...p, ...ref.greedy[i].slice(0, -1)], from: p.length - 1 })));
  }
  const shipped = benchModel(SHAPES.find((s) => s.from === "model")!);
  const text = validationTokens(join(ROOT, "test/fixtures/shards-8k-tiny"), 96);
  record(shipped.file, [{ tokens: text.slice(0, 48), from: 32 }, { tokens: text.slice(48, 96), from: 32 }]);
  const project = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).name as string;
  const out = flags.get("out") ?? join(ROOT, "test/fixtures/llamacpp-logits.json");
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["-C", tree, "rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    // a source tree without its git history
  }
  writeFileSync(out, JSON.stringify({ recorded_by: `${project} scripts/llamacpp/record-logits.ts`, llama_cpp_commit: commit, date: new Date().toISOString().slice(0, 10), top, models }) + "\n");
  console.log(`wrote ${relative(ROOT, out)}`);
}

runMain(main);
