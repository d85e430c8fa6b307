// Checkpoints as they come from a hub on the other two hosts, on our kernels: a GGUF with its own
// vocabulary under workerd (the Workers build without onnxruntime-web) and a safetensors folder
// under Deno; each picks the PyTorch reference's greedy token wherever fp32's choice is decisive
// (test/formats.test.ts checks the logits themselves, on Node).
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DENO_RUN_ARGS } from "../src/hosts/config.js";
import { DECISIVE, reference, top2 } from "./helpers/checkpoint-reference.js";
import { checkpointFixtures } from "./helpers/interop-fixtures.js";
import type { RunningServer } from "./helpers/server.js";
import { freePort, spawnHost } from "./helpers/spawn.js";

const ROOT = join(import.meta.dirname, "..");
const bin = (name: string) => join(ROOT, "node_modules/.bin", name);
const FIXTURES = checkpointFixtures();

/** The reference's decisive rows as prompts: each prompt with the reference's greedy tokens before the row, and the token the row picks (fp32's top two at least DECISIVE apart). */
function decisiveRows(dir: string): { prompt: number[]; next: number }[] {
  const ref = reference(dir), V = ref.logits.length / ref.greedy.flat().length, rows: { prompt: number[]; next: number }[] = [];
  let row = 0;
  ref.prompts.forEach((prompt, i) => ref.greedy[i].forEach((next, j) => {
    if (top2(ref.logits.subarray(row * V, ++row * V)).gap >= DECISIVE) rows.push({ prompt: [...prompt, ...ref.greedy[i].slice(0, j)], next });
  }));
  return rows;
}

const hosts: { host: string; dir: string; format: string; start: () => Promise<RunningServer> }[] = [
  {
    host: "workerd", dir: join(FIXTURES, "qwen2-gguf"), format: "gguf",
    start: async () => {
      const port = await freePort();
      const args = ["dev", "-c", "test/wrangler.checkpoint.toml", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(await freePort())];
      return spawnHost(bin("wrangler"), args, { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true", NO_UPDATE_NOTIFIER: "1" }, port, 90_000);
    },
  },
  {
    host: "Deno", dir: join(FIXTURES, "mistral-safetensors"), format: "safetensors",
    start: async () => {
      const port = await freePort();
      return spawnHost(bin("deno"), DENO_RUN_ARGS, { MODEL_DIR: relative(ROOT, join(FIXTURES, "mistral-safetensors")), PORT: String(port), HOST: "127.0.0.1", DENO_NO_UPDATE_CHECK: "1" }, port);
    },
  },
];

for (const { host, dir, format, start } of hosts) {
  describe(`${host}: a ${format} checkpoint`, () => {
    let server: RunningServer;
    beforeAll(async () => (server = await start()), 120_000);
    afterAll(() => server?.close());

    it("runs on our kernels (no fallback) and picks the PyTorch reference's greedy token on its decisive rows", async () => {
      const models = (await (await fetch(`${server.baseURL}/v1/models`)).json()) as { data: { id: string; meta: Record<string, unknown> }[] };
      expect(models.data[0].meta).toMatchObject({ format, engine: "simd", engine_fallback_reason: null });
      const post = async (path: string, body: object) =>
        (await fetch(`${server.baseURL}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).json() as Promise<Record<string, any>>;
      const rows = decisiveRows(dir);
      for (const { prompt, next } of rows) {
        const body = await post("/v1/completions", { model: models.data[0].id, prompt, max_tokens: 1, temperature: 0 });
        expect(body.error).toBeUndefined();
        // The text the reference's token adds after the prompt (a SentencePiece decode drops a leading space at the start).
        const [whole, before] = await Promise.all([post("/detokenize", { tokens: [...prompt, next] }), post("/detokenize", { tokens: prompt })]);
        expect(body.choices[0].text).toBe(whole.content.slice(before.content.length));
      }
      const compared = rows.length;
      expect(compared).toBeGreaterThanOrEqual(4);
    });
  });
}
