// Tokenize the zero-shot eval sets (../shared/data/eval) with a tokenizer, in lm-evaluation-harness
// form, for scripts/tinylm/evaluate.py — so Python never tokenizes differently from the server.
//   npm run eval:encode -- --tokenizer build/tokenizer-8k --out build/eval/compact-8k.json [--limit 500]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { loadTokenizer } from "./files.js";
import { parseFlags, runMain } from "./cli.js";
import type { Tokenizer } from "../../src/tokenizer/tokenizer.js";

const USAGE = `
usage: npm run eval:encode -- [--tokenizer DIR|parent] [--eval-dir DIR] [--limit N] [--out FILE]
Tokenize the zero-shot eval sets in lm-evaluation-harness form.
  --tokenizer   tokenizer folder, or "parent" for cl100k (default: parent)
  --eval-dir    the eval sets (default: build/eval-data, from npm run data:fetch -- --evals; else ../shared/data/eval)
  --limit N     examples per task, 0 = all (default: 0)
  --out FILE    (default: build/eval/tasks.json)
`;

interface Option {
  context: number[];
  continuation: number[];
  bytes: number;
}

/** Context and continuation tokenized together, then split where the context ends (harness style). */
function option(tok: Tokenizer, context: string, continuation: string): Option {
  const ctx = tok.encode(context);
  const whole = tok.encode(context + continuation);
  let split = 0;
  while (split < ctx.length && split < whole.length && ctx[split] === whole[split]) split++;
  return { context: whole.slice(0, split), continuation: whole.slice(split), bytes: Buffer.byteLength(continuation.trim()) };
}

const TASKS: Record<string, (tok: Tokenizer, ex: Record<string, unknown>) => { options: Option[]; gold: number }> = {
  lambada_openai: (tok, ex) => ({ options: [option(tok, ex.context as string, ` ${ex.continuation}`)], gold: 0 }),
  winogrande: (tok, ex) => ({
    options: (ex.context_options as string[]).map((c) => option(tok, c, ` ${ex.continuation}`)),
    gold: ex.gold as number,
  }),
  ...Object.fromEntries(["arc_easy", "arc_challenge", "piqa", "openbook_qa"].map((name) => [
    name,
    (tok: Tokenizer, ex: Record<string, unknown>) => {
      const query = ex.query as string;
      const context = query.startsWith("Question:") ? `${query}\nAnswer:` : query;
      return { options: (ex.choices as string[]).map((c) => option(tok, context, ` ${c}`)), gold: ex.gold as number };
    },
  ])),
};

runMain(async () => {
  const { flags } = parseFlags(process.argv.slice(2), USAGE);
  const tok = loadTokenizer(flags.get("tokenizer") ?? "parent");
  // What `npm run data:fetch -- --evals` writes, else the project machines' copy.
  const dir = flags.get("eval-dir") ?? (existsSync("build/eval-data") || !existsSync("../shared/data/eval") ? "build/eval-data" : "../shared/data/eval");
  const limit = Number(flags.get("limit") ?? 0);
  const out: Record<string, unknown[]> = {};
  for (const [name, build] of Object.entries(TASKS)) {
    const path = join(dir, `${name}.jsonl`);
    let lines: string[];
    try {
      lines = readFileSync(path, "utf8").split("\n").filter(Boolean);
    } catch (err) {
      throw new Error(`${path}: cannot read eval set (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
    out[name] = (limit ? lines.slice(0, limit) : lines).map((l, i) => {
      try {
        return build(tok, JSON.parse(l));
      } catch (err) {
        throw new Error(`${path}:${i + 1}: ${(err as Error).message}`);
      }
    });
  }
  const file = flags.get("out") ?? "build/eval/tasks.json";
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(out));
  console.log(`${file}: ${Object.entries(out).map(([k, v]) => `${k} ${v.length}`).join(", ")}`);
});
