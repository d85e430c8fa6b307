// One served greedy stream, as a client sees it: the Node host in a process of its own (optionally
// under V8's CPU profiler), a 128-token prompt, N streamed tokens (a prompt whose greedy continuation runs past them: a logit_bias against end-of-text
// would leave the greedy fast path), TTFT and the
// decode rate after the first token, median over runs after a warm-up. Compare with the engine's own
// decode rate (`tsx bench/engine-cli.ts simd ...`) to see what serving costs per token.
//   tsx bench/served.ts [--runs 5] [--tokens 256] [--model model] [--threads 1] [--cpu-prof DIR]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { freePort, spawnHost } from "../test/helpers/spawn.js";
import { median } from "./stats.js";

const { values: opts } = parseArgs({
  options: { runs: { type: "string", default: "5" }, tokens: { type: "string", default: "256" }, model: { type: "string", default: "model" }, threads: { type: "string", default: "1" }, "cpu-prof": { type: "string" }, help: { type: "boolean" } },
});
if (opts.help) {
  console.log("usage: tsx bench/served.ts [--runs N] [--tokens N] [--model DIR] [--threads N] [--cpu-prof DIR]   (one greedy stream through the Node host's HTTP API; --threads: its THREADS)");
  process.exit(0);
}
const prompt = Array.from({ length: 128 }, (_, i) => 300 + ((i * 37) % 4000));
const port = await freePort();
const profile = opts["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", opts["cpu-prof"]] : [];
const server = await spawnHost(process.execPath, [...profile, "--import", "tsx", "src/hosts/node.ts"], { MODEL_DIR: opts.model!, PORT: String(port), HOST: "127.0.0.1", THREADS: opts.threads! }, port);
const id = ((await (await fetch(`${server.baseURL}/v1/models`)).json()) as { data: { id: string }[] }).data[0].id;

async function stream(tokens: number) {
  const t0 = performance.now();
  const res = await fetch(`${server.baseURL}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: id, prompt, max_tokens: tokens, temperature: 0, stop: [], stream: true }),
  });
  const reader = res.body!.getReader();
  let first = 0;
  let events = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!first) first = performance.now();
    for (let i = value.indexOf(100); i >= 0; i = value.indexOf(100, i + 1)) if (value[i + 1] === 97 && value[i + 2] === 116 && value[i + 3] === 97) events++; // "data"
  }
  const end = performance.now();
  if (events !== tokens + 1) throw new Error(`${events - 1} tokens streamed, not ${tokens}: the continuation ended early`);
  return { ttft_ms: first - t0, decode_tok_s: ((tokens - 1) / (end - first)) * 1000, events };
}

/** The server process's CPU time so far (user + system, ms), from /proc: steadier than wall time on a shared machine. */
function serverCpuMs(): number {
  const fields = readFileSync(`/proc/${server.child!.pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

try {
  await stream(32); // warm-up
  const rows = [];
  const cpu0 = serverCpuMs();
  for (let i = 0; i < Number(opts.runs); i++) rows.push(await stream(Number(opts.tokens)));
  const cpuPerToken = (serverCpuMs() - cpu0) / (rows.length * Number(opts.tokens));
  const out = {
    node: process.version, runs: rows.length, tokens: Number(opts.tokens),
    ttft_ms: median(rows.map((r) => r.ttft_ms)), decode_tok_s: median(rows.map((r) => r.decode_tok_s)), server_cpu_ms_per_token: cpuPerToken,
  };
  console.log(JSON.stringify(out));
} finally {
  const exited = new Promise((r) => (server.child!.exitCode !== null ? r(null) : server.child!.once("exit", r)));
  await server.close();
  await exited; // the profile is written at exit
}
