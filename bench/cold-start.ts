// Cold start as a client and the bill see it: a fresh host process, then one streamed completion;
// wall clock from the process's start to the first token, and the process's CPU time (user + system,
// all its threads) by then, both read from /proc (Linux, 10 ms ticks). Each run is a new process.
//   workerd: workerd itself (no wrangler) serving the Worker as `wrangler deploy --dry-run` bundles
//            it for CONFIG, the model folder as its ASSETS binding; the time counts workerd's start,
//            the isolate's script and module compilation, the model load and the first token.
//   node:    `node --import tsx src/hosts/node.ts` (loads eagerly and runs a warm-up before serving).
//   tsx bench/cold-start.ts workerd [--config wrangler.toml] [--model DIR] [--runs 5]
//   tsx bench/cold-start.ts node [--model DIR] [--runs 5]
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../test/helpers/spawn.js";
import { median } from "./stats.js";
import { WORKERD, workerdConfig } from "./workerd.js";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { config: { type: "string", default: "wrangler.toml" }, model: { type: "string" }, runs: { type: "string", default: "5" }, help: { type: "boolean" } },
});
if (opts.help || !["workerd", "node"].includes(positionals[0])) {
  console.log("usage: tsx bench/cold-start.ts workerd|node [--config wrangler.toml] [--model DIR] [--runs N]   (process start → first token, and its CPU time)");
  process.exit(opts.help ? 0 : 2);
}
const ROOT = join(import.meta.dirname, "..");
const TICK = 100; // USER_HZ: /proc's clock ticks per second on Linux
const host = positionals[0] as "workerd" | "node";

/** [start, cpu] of a process in seconds: its start since boot, its user + system time. */
function procTimes(pid: number): { start: number; cpu: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return { start: Number(fields[19]) / TICK, cpu: (Number(fields[11]) + Number(fields[12])) / TICK };
}
const uptime = () => Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);

/** The id the server gives the model (manifest.json's name, as src/model.ts takes it). */
function modelId(dir: string): string {
  try {
    return (JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { name?: string }).name ?? "tinylm-edge";
  } catch {
    return "tinylm-edge";
  }
}

async function firstToken(baseURL: string, deadline: number): Promise<void> {
  const model = modelId(opts.model ?? join(ROOT, "model"));
  const body = JSON.stringify({ model, prompt: "Once upon a time", max_tokens: 2, temperature: 0, stream: true });
  while (true) {
    let res: Response;
    try {
      res = await fetch(`${baseURL}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
    } catch {
      if (Date.now() > deadline) throw new Error("the host never answered");
      await new Promise((r) => setTimeout(r, 10));
      continue; // not listening yet
    }
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    const reader = res.body!.getReader(), decoder = new TextDecoder();
    let text = "";
    while (!text.includes('"text"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended without a token: ${text}`);
      text += decoder.decode(value);
    }
    void reader.cancel();
    return;
  }
}

const workerdAt = host === "workerd" ? workerdConfig(opts.config!, opts.model ?? "model") : null;

async function run(): Promise<{ wall_ms: number; cpu_ms: number }> {
  const port = await freePort();
  const env = { ...process.env, LOG: "quiet" };
  let child: ChildProcess;
  if (host === "workerd") {
    child = spawn(WORKERD, ["serve", workerdAt!(port)], { env, stdio: ["ignore", "ignore", "pipe"], detached: true });
  } else {
    child = spawn(process.execPath, ["--import", "tsx", "src/hosts/node.ts"], { cwd: ROOT, env: { ...env, MODEL_DIR: opts.model ?? "model", PORT: String(port) }, stdio: ["ignore", "ignore", "pipe"], detached: true });
  }
  let log = "";
  child.stderr!.on("data", (d) => (log += d));
  try {
    const deadline = Date.now() + 120_000;
    await firstToken(`http://127.0.0.1:${port}`, deadline).catch((err: Error) => {
      throw new Error(`${err.message}\n${log}`);
    });
    const now = uptime(), t = procTimes(child.pid!);
    return { wall_ms: Math.round((now - t.start) * 1000), cpu_ms: Math.round(t.cpu * 1000) };
  } finally {
    process.kill(-child.pid!, "SIGKILL");
    await new Promise((r) => setTimeout(r, 300));
  }
}

const rows = [];
for (let i = 0; i < Number(opts.runs); i++) {
  const row = await run();
  rows.push(row);
  console.error(JSON.stringify(row));
}
console.log(JSON.stringify({ host, config: host === "workerd" ? opts.config : null, model: opts.model ?? "model", runs: rows.length,
  median_wall_ms: median(rows.map((r) => r.wall_ms)), median_cpu_ms: median(rows.map((r) => r.cpu_ms)), rows }));
