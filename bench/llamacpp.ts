// Side by side with llama.cpp, on the same weights and thread count (1, or 2 with --threads 2: our
// kernels' helper thread, kernels/threads.c; llama.cpp's -t 2): the shipped model, and random
// weights in the shapes of SmolLM2-135M and Qwen2.5-0.5B (bench/models.ts writes them as GGUF;
// llama-quantize --pure makes the Q8_0 and Q4_0 files from them, and both engines run those very
// files: our kernels keep their blocks, WEIGHT_BITS 8 and 4). It runs a llama.cpp you built
// yourself (see BENCHMARKS.md) and never builds one:
//
//   LLAMA_CPP_BIN=~/src/llama.cpp/build/bin npm run bench:llamacpp -- [--shapes a,b] [--rounds N] [--runs N] [--threads 1|2] [--quick]
//
// Rows, llama.cpp's tool in brackets: 128-token prefill (llama-bench pp128), decode tok/s at
// context 128 (llama-bench tg128: contexts 0 → 128; ours 64 → 128) and at the long context 1024
// (512 for the shipped model's window; llama-batched-bench, a prompt of context − 64 then 64
// tokens, as ours), 8 sequences decoded together over contexts 64 → 128 (llama-batched-bench
// -npl 8), and our WASM heap. Every configuration runs once per round, rounds interleave them (the
// machine's drift hits all alike), and each number is the median over rounds of per-run medians.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseFlags } from "../scripts/tokenizer/cli.js";
import { machineInfo, type EngineRow, type GgufRow } from "./engine.js";
import { benchModel, graphFolder, parameters, SHAPES, type BenchShape } from "./models.js";
import { median } from "./stats.js";

const USAGE = `
usage: LLAMA_CPP_BIN=DIR npm run bench:llamacpp -- [--llama-cpp-bin DIR] [--shapes NAMES] [--rounds N] [--runs N] [--threads N] [--quick]
Our kernels against llama.cpp (llama-bench, llama-batched-bench) on the same weights and threads.
  --llama-cpp-bin DIR  llama.cpp's build/bin (default: $LLAMA_CPP_BIN), with llama-bench, llama-batched-bench, llama-quantize
  --shapes NAMES       comma-separated, of: ${SHAPES.map((s) => s.name).join(", ")} (default: all)
  --rounds N           interleaved rounds (default: 2, 1 with --quick)
  --runs N             runs per measurement within a round (default: 3, 1 with --quick)
  --threads N          1 (default) or 2, for every engine; results go to bench/results/llamacpp.json, or llamacpp-t2.json
`;

const { flags } = parseFlags(process.argv.slice(2), USAGE);
const BIN = flags.get("llama-cpp-bin") ?? process.env.LLAMA_CPP_BIN;
if (!BIN) {
  console.error("error: set LLAMA_CPP_BIN (or --llama-cpp-bin) to a llama.cpp build/bin folder; BENCHMARKS.md says how to build llama.cpp");
  process.exit(1);
}
const TOOLS = ["llama-bench", "llama-batched-bench", "llama-quantize"];
for (const tool of TOOLS) {
  if (!existsSync(join(BIN, tool))) {
    console.error(`error: ${join(BIN, tool)} not found; build llama.cpp's ${TOOLS.join(", ")} (BENCHMARKS.md)`);
    process.exit(1);
  }
}
const QUICK = flags.has("quick");
const ROUNDS = Number(flags.get("rounds") ?? (QUICK ? 1 : 2));
const RUNS = Number(flags.get("runs") ?? (QUICK ? 1 : 3));
const THREADS = Number(flags.get("threads") ?? 1);
if (THREADS !== 1 && THREADS !== 2) {
  console.error(`error: --threads must be 1 or 2 (our kernels take at most a second thread), got ${flags.get("threads")}`);
  process.exit(1);
}
const T = String(THREADS);
const names = flags.get("shapes")?.split(",");
const unknown = names?.filter((n) => !SHAPES.some((s) => s.name === n));
if (unknown?.length) {
  console.error(`error: unknown shape ${unknown.join(", ")}; shapes: ${SHAPES.map((s) => s.name).join(", ")}`);
  process.exit(1);
}
const shapes = SHAPES.filter((s) => !names || names.includes(s.name));
const QUANTS = ["Q8_0", "Q4_0"] as const;
type Quant = (typeof QUANTS)[number];
const STEPS = 64;
const longContext = (s: BenchShape) => Math.min(1024, s.maxLength);

/** The Q8_0 / Q4_0 file beside the source, made by llama-quantize --pure (every matrix that type, the tied embedding too) unless newer than its source. */
function quantized(source: string, quant: Quant): string {
  const out = source.replace(/-f(16|32)\.gguf$/, `-${quant.toLowerCase()}.gguf`);
  if (existsSync(out) && statSync(out).mtimeMs > statSync(source).mtimeMs) return out;
  execFileSync(join(BIN!, "llama-quantize"), ["--pure", source, out, quant, "1"], { stdio: ["ignore", "ignore", "pipe"] });
  return out;
}

interface LlamaRow {
  pp128_ms: number;
  tg128_tok_s: number;
  decode_long_tok_s: number;
  batch8_tok_s: number;
  build: string;
}

const jsonLines = (out: string) => out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));

function llamaCpp(file: string, long: number): LlamaRow {
  const run = (tool: string, args: string[]) => execFileSync(join(BIN!, tool), ["-m", file, ...args], { encoding: "utf8", maxBuffer: 2 ** 26, stdio: ["ignore", "pipe", "pipe"] });
  const bench = jsonLines(run("llama-bench", ["-t", T, "-p", "128", "-n", "128", "-r", String(RUNS), "-o", "jsonl"]));
  const pp = bench.find((r) => r.n_prompt === 128 && r.n_gen === 0), tg = bench.find((r) => r.n_prompt === 0 && r.n_gen === 128);
  // llama-batched-bench measures each listed size once: the list repeated gives RUNS runs.
  const batched = (pp: number, pl: number) => jsonLines(run("llama-batched-bench", ["-t", T, "-tb", T, "-c", String(Math.max(pl * (pp + STEPS), 256)), "-b", "2048", "-ub", "512",
    "-npp", Array(RUNS).fill(pp).join(","), "-ntg", String(STEPS), "-npl", String(pl), "--output-format", "jsonl"])).map((r) => r.speed_tg as number);
  return {
    pp128_ms: 1000 / (median(pp.samples_ts) / 128),
    tg128_tok_s: median(tg.samples_ts),
    decode_long_tok_s: median(batched(long - STEPS, 1)),
    batch8_tok_s: median(batched(128 - STEPS, 8)),
    build: `${pp.build_commit} (build ${pp.build_number}) from ${BIN}`,
  };
}

const BITS: Record<Quant, string> = { Q8_0: "8", Q4_0: "4" };

/** A bench script of ours in a process of its own (a fresh heap, and the same V8 flags as the Node host, as run.ts does): its last line, JSON. */
function child<T>(script: string, args: string[]): T {
  const out = execFileSync(process.execPath, ["--import", "tsx", join(import.meta.dirname, script), ...args], { encoding: "utf8", maxBuffer: 2 ** 26, stdio: ["ignore", "pipe", "pipe"] });
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

function ours(file: string, long: number, quant: Quant): GgufRow & { v8: string; kernels: string } {
  return child("engine-cli.ts", ["gguf", file, String(RUNS), String(long), BITS[quant], T]);
}

/** The shipped folder as `npm start` serves it (our exporter's int8 graph, 7-bit weights): the engine alone, then one stream through HTTP. */
function shipped(dir: string): { engine_decode_tok_s: number; engine_after_prompt_tok_s: number; engine_prefill_ms: number; engine_batch8_tok_s: number; served_decode_tok_s: number; served_ttft_ms: number } {
  const engine = child<EngineRow>("engine-cli.ts", ["simd", dir, "onnx/model_quantized.onnx", T, String(RUNS)]);
  const served = child<{ decode_tok_s: number; ttft_ms: number }>("served.ts", ["--model", dir, "--runs", String(RUNS), "--tokens", "128", "--threads", T]);
  return { engine_decode_tok_s: engine.decode_tok_s["128"], engine_after_prompt_tok_s: engine.decode_after_prompt_tok_s ?? NaN, engine_prefill_ms: engine.prefill_ms["128"], engine_batch8_tok_s: engine.decode_batch8_tok_s, served_decode_tok_s: served.decode_tok_s, served_ttft_ms: served.ttft_ms };
}

/** Our exporter's int8 graph at the shape (random weights of its own): our kernels and onnxruntime-web on those same weights. */
function graphRows(dir: string) {
  const row = (engine: string) => child<EngineRow & { wasm_heap_mb: number | null }>("engine-cli.ts", [engine, dir, "onnx/model_quantized.onnx", T, String(RUNS)]);
  return { simd: row("simd"), web: row("web") };
}

const t0 = performance.now();
const info = machineInfo();
console.error(`machine: ${JSON.stringify(info)}`);
const files = shapes.map((s) => {
  const t = performance.now(), { file, wrote } = benchModel(s);
  const q = Object.fromEntries(QUANTS.map((quant) => [quant, quantized(file, quant)])) as Record<Quant, string>;
  console.error(`${s.name}: ${(parameters(s) / 1e6).toFixed(1)}M parameters, ${file}${wrote ? " written" : ""}, quantized (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  let graph: string | null = null;
  if (s.arch === "llama" && !s.from) {
    try {
      graph = graphFolder(s);
    } catch (err) {
      console.error(`${s.name}: no int8 graph for onnxruntime-web (${(err as Error).message.split("\n")[0]}); its rows are left out`);
    }
  }
  return { shape: s, source: file, q, graph };
});

const llamaRounds = new Map<string, LlamaRow[]>(), ourRounds = new Map<string, ReturnType<typeof ours>[]>(), shippedRounds = new Map<string, ReturnType<typeof shipped>[]>();
const graphRounds = new Map<string, ReturnType<typeof graphRows>[]>();
const push = <T>(m: Map<string, T[]>, key: string, v: T) => m.set(key, [...(m.get(key) ?? []), v]);
for (let r = 0; r < ROUNDS; r++) {
  for (const { shape, q, graph } of files) {
    const long = longContext(shape);
    for (const quant of QUANTS) {
      const theirs = llamaCpp(q[quant], long);
      push(llamaRounds, `${shape.name}/${quant}`, theirs);
      console.error(`round ${r + 1}: ${shape.name} llama.cpp ${quant}: tg128 ${theirs.tg128_tok_s.toFixed(1)} tok/s, pp128 ${theirs.pp128_ms.toFixed(1)} ms`);
      const row = ours(q[quant], long, quant);
      push(ourRounds, `${shape.name}/${quant}`, row);
      console.error(`round ${r + 1}: ${shape.name} ours ${quant}: decode@128 ${row.decode_tok_s["128"].toFixed(1)} tok/s, prefill128 ${row.prefill_ms_128.toFixed(1)} ms`);
    }
    if (graph) {
      const row = graphRows(graph);
      push(graphRounds, shape.name, row);
      console.error(`round ${r + 1}: ${shape.name} int8 graph: ours decode@128 ${row.simd.decode_tok_s["128"].toFixed(1)} tok/s, prefill128 ${row.simd.prefill_ms["128"].toFixed(1)} ms; onnxruntime-web ${row.web.decode_tok_s["128"].toFixed(1)} tok/s, ${row.web.prefill_ms["128"].toFixed(1)} ms`);
    }
    if (shape.from) {
      const row = shipped(join(import.meta.dirname, "..", shape.from));
      push(shippedRounds, shape.name, row);
      console.error(`round ${r + 1}: ${shape.name} ours, shipped graph: engine ${row.engine_decode_tok_s.toFixed(1)} tok/s (${row.engine_after_prompt_tok_s.toFixed(1)} at 128 → 256), served ${row.served_decode_tok_s.toFixed(1)} tok/s, TTFT ${row.served_ttft_ms.toFixed(1)} ms`);
    }
  }
}

const med = <T>(rows: T[], get: (row: T) => number) => median(rows.map(get));
const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "–");
const dot = files.length ? ourRounds.get(`${files[0].shape.name}/Q8_0`)![0].dot : null; // relaxed.wasm's form our rows ran
const lines = [
  `## Side by side with llama.cpp (\`npm run bench:llamacpp\`)`,
  "",
  `Machine: ${info.cpu} (${info.simd.join(", ") || "no x86/Arm SIMD flags read"}), ${info.cores} cores, ${info.memory_gb} GiB; Node ${info.node} (V8 ${info.v8}, ${info.kernels} kernels${dot ? `, ${dot} dot products` : ""}); ` +
    `llama.cpp ${files.length ? llamaRounds.get(`${files[0].shape.name}/Q8_0`)![0].build : "–"}; ${THREADS === 1 ? "1 thread" : `${THREADS} threads`} everywhere; ${info.date}.`,
  `Medians over ${ROUNDS} interleaved round(s) of ${RUNS} run(s) each. Both engines run the same file, llama-quantize --pure's Q8_0 or Q4_0 (ours keeps its blocks: ` +
    `${files.length ? QUANTS.map((q) => `the ${q} file: ${ourRounds.get(`${files[0].shape.name}/${q}`)![0].quantization}`).join("; ") : "–"}; KV cache ${files.length ? ourRounds.get(`${files[0].shape.name}/Q8_0`)![0].kv_cache : "–"} against llama.cpp's f16). ` +
    `Ratios are ours ÷ llama.cpp, > 1 is ours faster (for prefill: llama.cpp's time ÷ ours).`,
  "",
  "| shape | row | llama.cpp Q8_0 | ours Q8_0 | ours ÷ llama.cpp | llama.cpp Q4_0 | ours Q4_0 | ours ÷ llama.cpp |",
  "|---|---|---:|---:|---:|---:|---:|---:|",
];
for (const { shape } of files) {
  const long = longContext(shape), label = `${shape.name} (${(parameters(shape) / 1e6).toFixed(0)}M)`;
  const row = (name: string, theirs: (x: LlamaRow) => number, mine: (x: GgufRow) => number, lowerIsBetter = false) => {
    const cells = QUANTS.map((q) => {
      const a = med(llamaRounds.get(`${shape.name}/${q}`)!, theirs), b = med(ourRounds.get(`${shape.name}/${q}`)!, mine);
      return `${f(a)} | ${f(b)} | ${f(lowerIsBetter ? a / b : b / a, 2)}×`;
    });
    return `| ${label} | ${name} | ${cells.join(" | ")} |`;
  };
  const heap = QUANTS.map((q) => ourRounds.get(`${shape.name}/${q}`)!).map((rows) => `${f(Math.max(...rows.map((x) => x.wasm_heap_mb)), 0)}, ${f(med(rows, (x) => x.load_ms), 0)}`);
  lines.push(
    row("prefill 128 tokens (ms)", (x) => x.pp128_ms, (x) => x.prefill_ms_128, true),
    row("decode tok/s @128", (x) => x.tg128_tok_s, (x) => x.decode_tok_s["128"]),
    row(`decode tok/s @${long}`, (x) => x.decode_long_tok_s, (x) => x.decode_tok_s[long]),
    row("8 streams, tok/s @128", (x) => x.batch8_tok_s, (x) => x.decode_batch8_tok_s),
    `| ${label} | our WASM heap (MiB), load (ms) | | ${heap[0]} | | | ${heap[1]} | |`,
  );
}
for (const [name, rows] of graphRounds) {
  const q8 = llamaRounds.get(`${name}/Q8_0`)!, theirs = (get: (x: LlamaRow) => number) => med(q8, get);
  const mine = (get: (x: EngineRow) => number) => med(rows.map((x) => x.simd), get), web = (get: (x: EngineRow) => number) => med(rows.map((x) => x.web), get);
  const row = (label: string, llama: ((x: LlamaRow) => number) | null, get: (x: EngineRow) => number, lowerIsBetter = false) => {
    const a = llama ? theirs(llama) : NaN, b = mine(get), c = web(get), ratio = (x: number, y: number) => f(lowerIsBetter ? y / x : x / y, 2) + "×";
    return `| ${label} | ${llama ? f(a) : "–"} | ${f(b)} | ${llama ? ratio(b, a) : "–"} | ${f(c)} | ${ratio(b, c)} |`;
  };
  const heap = (pick: (x: ReturnType<typeof graphRows>) => { wasm_heap_mb: number | null }) => f(Math.max(...rows.map((x) => pick(x).wasm_heap_mb ?? NaN)), 0);
  lines.push(
    "",
    `${name}, our exporter's int8 graph (7-bit weights, a scale per row, as the shipped model; random weights of its own, scripts/tinylm/shape_folder.py): ` +
      `our kernels and onnxruntime-web (${T} thread${THREADS > 1 ? "s" : ""}) on that same graph, in the same rounds as llama.cpp's Q8_0 above. Ratios > 1: ours faster.`,
    "",
    "| row | llama.cpp Q8_0 | ours, int8 graph | ours ÷ llama.cpp | onnxruntime-web, same graph | ours ÷ onnxruntime-web |",
    "|---|---:|---:|---:|---:|---:|",
    row("prefill 128 tokens (ms)", (x) => x.pp128_ms, (x) => x.prefill_ms["128"], true),
    row("decode tok/s @128", (x) => x.tg128_tok_s, (x) => x.decode_tok_s["128"]),
    row("decode tok/s @512", null, (x) => x.decode_tok_s["512"]),
    row("8 streams, tok/s @128", (x) => x.batch8_tok_s, (x) => x.decode_batch8_tok_s),
    `| WASM heap (MiB) | | ${heap((x) => x.simd)} | | ${heap((x) => x.web)} | |`,
  );
}
for (const [name, rows] of shippedRounds) {
  const q8 = llamaRounds.get(`${name}/Q8_0`)!, theirs = (get: (x: LlamaRow) => number) => med(q8, get), mine = (get: (x: ReturnType<typeof shipped>) => number) => med(rows, get);
  lines.push(
    "",
    `The shipped folder as \`npm start\` serves it (${name}: our exporter's int8 graph, 7-bit weights; served = one greedy stream through the Node host's HTTP API after a 128-token prompt, bench/served.ts), against llama.cpp Q8_0 in the same rounds:`,
    "",
    "| row | llama.cpp Q8_0 | ours | ours ÷ llama.cpp |",
    "|---|---:|---:|---:|",
    `| decode tok/s @128, engine | ${f(theirs((x) => x.tg128_tok_s))} | ${f(mine((x) => x.engine_decode_tok_s))} | ${f(mine((x) => x.engine_decode_tok_s) / theirs((x) => x.tg128_tok_s), 2)}× |`,
    `| decode tok/s, served stream | ${f(theirs((x) => x.tg128_tok_s))} | ${f(mine((x) => x.served_decode_tok_s))} | ${f(mine((x) => x.served_decode_tok_s) / theirs((x) => x.tg128_tok_s), 2)}× |`,
    `| 128-token prefill (ms): engine / served TTFT | ${f(theirs((x) => x.pp128_ms))} | ${f(mine((x) => x.engine_prefill_ms))} / ${f(mine((x) => x.served_ttft_ms))} | ${f(mine((x) => x.served_ttft_ms) / theirs((x) => x.pp128_ms), 2)}× llama.cpp's time (served) |`,
    `| 8 streams tok/s, engine | ${f(theirs((x) => x.batch8_tok_s))} | ${f(mine((x) => x.engine_batch8_tok_s))} | ${f(mine((x) => x.engine_batch8_tok_s) / theirs((x) => x.batch8_tok_s), 2)}× |`,
    `| decode tok/s @128 → 256 (the served stream's positions), engine | | ${f(mine((x) => x.engine_after_prompt_tok_s))} | |`,
    `| served ÷ our engine's decode at the same positions | | | ${f(mine((x) => x.served_decode_tok_s) / mine((x) => x.engine_after_prompt_tok_s), 2)}× |`,
  );
}
lines.push("", `Wall time of this run: ${((performance.now() - t0) / 60000).toFixed(1)} min.`, "");
mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
const rounds = Object.fromEntries(files.map(({ shape }) => [shape.name, { ...Object.fromEntries(QUANTS.map((q) => [q, { llama_cpp: llamaRounds.get(`${shape.name}/${q}`), ours: ourRounds.get(`${shape.name}/${q}`) }])), shipped: shippedRounds.get(shape.name) ?? null, int8_graph: graphRounds.get(shape.name) ?? null }]));
writeFileSync(join(import.meta.dirname, THREADS === 1 ? "results/llamacpp.json" : `results/llamacpp-t${THREADS}.json`), JSON.stringify({ machine: info, rounds: ROUNDS, runs: RUNS, threads: THREADS, shapes: rounds }, null, 2) + "\n");
console.log(lines.join("\n"));
