// Server CPU per streamed event: hono's streamSSE with the whole chunk serialised per event, against
// our sseStream + chunkWriter (src/openai/sse.ts), in one process on @hono/node-server, requests
// alternating, one setImmediate turn between events as the scheduler takes. The client is curl, in
// a process of its own, so only the server's side is counted.
//   tsx bench/sse-writers.ts [pairs, default 20]
import { spawn } from "node:child_process";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { chunkWriter, sseStream } from "../src/openai/sse.js";
import { median } from "./stats.js";

if (process.argv.includes("--help")) {
  console.log("usage: tsx bench/sse-writers.ts [PAIRS]   (µs of server CPU per SSE event: hono's streamSSE vs ours)");
  process.exit(0);
}
const EVENTS = 2000;
const base = { id: "cmpl-6e77158b8490cfab66900b17", object: "text_completion", created: 1796169716, model: "tinylm-edge-14m" };
const texts = [" of", " the", " Princess", " Oz", "\n", ' "quoted"'];
const choice = (i: number) => ({ text: texts[i % texts.length], index: 0, logprobs: null, finish_reason: null });
const turn = () => new Promise((r) => setImmediate(r));
const cpu: Record<"hono" | "ours", number[]> = { hono: [], ours: [] };
const record = (which: "hono" | "ours", start: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(start);
  cpu[which].push((u.user + u.system) / EVENTS);
};

const app = new Hono();
app.get("/hono", (c) => {
  const start = process.cpuUsage();
  return streamSSE(c, async (s) => {
    for (let i = 0; i < EVENTS; i++) {
      await turn();
      await s.writeSSE({ data: JSON.stringify({ ...base, choices: [choice(i)] }) });
    }
    await s.writeSSE({ data: "[DONE]" });
    setTimeout(() => record("hono", start), 0); // after the last write has gone out
  });
});
app.get("/ours", (c) => {
  const start = process.cpuUsage();
  return sseStream(c, async (s) => {
    const chunk = chunkWriter(base);
    for (let i = 0; i < EVENTS; i++) {
      await turn();
      await s.writeSSE({ data: chunk(choice(i)) });
    }
    await s.writeSSE({ data: "[DONE]" });
    setTimeout(() => record("ours", start), 0);
  });
});

const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
await new Promise((r) => server.once("listening", r));
const port = (server.address() as { port: number }).port;
const get = (path: string) => new Promise<void>((resolve) => spawn("curl", ["-sN", "-o", "/dev/null", `http://127.0.0.1:${port}${path}`]).on("exit", () => resolve()));
for (let r = 0; r < Number(process.argv[2] ?? 20); r++) {
  await get("/hono");
  await get("/ours");
}
await new Promise((r) => setTimeout(r, 50));
const ratios = cpu.ours.map((o, i) => o / cpu.hono[i]);
console.log(JSON.stringify({ hono_us_per_event: median(cpu.hono), ours_us_per_event: median(cpu.ours), ours_over_hono_paired_median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), pairs: ratios.length }));
server.close();
