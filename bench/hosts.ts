// Decode speed through the HTTP API on each host (Node, workerd via wrangler dev, Deno), same model,
// one WASM thread, plus the WASM heap each reports in /metrics.
import { join } from "node:path";
import { freePort, spawnHost } from "../test/helpers/spawn.js";
import { median } from "./stats.js";
import { DENO_RUN_ARGS } from "../src/hosts/config.js";

export interface HostRow {
  host: string;
  decode_tok_s: number;
  wasm_heap_mb: number;
  /** Which of our kernels the host runs (relaxed-simd or simd128), from /v1/models. */
  kernels: string | null;
  /** V8's version, from /v1/models (null where the runtime does not tell: workerd). */
  v8: string | null;
}

const bin = (name: string) => join("node_modules", ".bin", name);

async function measure(host: string, baseURL: string, model: string, runs: number): Promise<HostRow> {
  const rates: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const t = performance.now();
    const res = await fetch(`${baseURL}/v1/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model, prompt: "Once upon a time", max_tokens: 256, temperature: 0, stop: [] }),
    });
    const body = (await res.json()) as { usage: { completion_tokens: number } };
    if (i > 0) rates.push(body.usage.completion_tokens / ((performance.now() - t) / 1000)); // first run is warm-up
  }
  const metrics = await (await fetch(`${baseURL}/metrics`)).text();
  const heap = Number(/^tinylm_wasm_heap_bytes (\d+)/m.exec(metrics)?.[1] ?? NaN);
  const models = (await (await fetch(`${baseURL}/v1/models`)).json()) as { data: { meta: { kernels: string | null; v8: string | null } }[] };
  const { kernels, v8 } = models.data[0].meta;
  return { host, decode_tok_s: median(rates), wasm_heap_mb: heap / 2 ** 20, kernels, v8 };
}

export async function benchHosts(modelDir: string, model: string, runs: number): Promise<HostRow[]> {
  const rows: HostRow[] = [];
  const starts: [string, () => Promise<Awaited<ReturnType<typeof spawnHost>>>][] = [
    ["Node", async () => {
      const port = await freePort();
      return spawnHost(bin("tsx"), ["src/hosts/node.ts"], { MODEL_DIR: modelDir, PORT: String(port) }, port);
    }],
    ["Cloudflare Workers (workerd, local)", async () => {
      const port = await freePort();
      return spawnHost(bin("wrangler"), ["dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(await freePort())],
        { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true" }, port);
    }],
    ["Deno", async () => {
      const port = await freePort();
      return spawnHost(bin("deno"), DENO_RUN_ARGS,
        { MODEL_DIR: modelDir, PORT: String(port), DENO_NO_UPDATE_CHECK: "1" }, port);
    }],
  ];
  for (const [host, start] of starts) {
    const server = await start();
    try {
      rows.push(await measure(host, server.baseURL, model, runs));
    } finally {
      await server.close();
    }
  }
  return rows;
}
