// Every command answers --help with its usage and exits 0 without touching anything (issue 19).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");
const tsx = join(ROOT, "node_modules/.bin/tsx");

const commands: [string, string[]][] = [
  ["node", ["bin/tinylm-edge.mjs", "--help"]],
  ...["scripts/data/fetch-corpus.ts", "scripts/loss-curve.ts", "scripts/compress.ts", "scripts/tokenizer/compress.ts", "scripts/tokenizer/encode-corpus.ts", "scripts/tokenizer/report.ts", "scripts/tokenizer/encode-evals.ts",
    "scripts/export.ts", "scripts/parity.ts", "scripts/pack.ts", "bench/run.ts", "bench/fairness-cli.ts", "bench/served.ts", "bench/sse-writers.ts", "bench/cold-start.ts", "bench/workers-fit.ts"].map((f): [string, string[]] => [tsx, [f, "--help"]]),
  ...["train", "recipe", "evaluate", "inherit", "sample", "study", "travel", "export", "interop", "foreign", "hf_logits"].map((m): [string, string[]] => ["/usr/bin/python3", ["-m", `scripts.tinylm.${m}`, "--help"]]),
];

describe("--help", () => {
  it("prints the usage of every script and the server, and creates nothing", async () => {
    const before = ["build/eval/tasks.json", "build/data/parent", "build/tokenizer-8192"].map((p) => existsSync(join(ROOT, p)));
    const results = await Promise.all(commands.map(async ([cmd, args]) => {
      const { stdout } = await run(cmd, args, { cwd: ROOT, timeout: 60_000 });
      return { what: args.join(" "), stdout };
    }));
    for (const r of results) expect(r.stdout, r.what).toMatch(/^usage: /);
    const after = ["build/eval/tasks.json", "build/data/parent", "build/tokenizer-8192"].map((p) => existsSync(join(ROOT, p)));
    expect(after).toEqual(before);
  }, 120_000);
});
