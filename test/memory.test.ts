// The memory budget on Workers (128 MB per isolate): with the Workers settings, the largest request
// the server admits keeps the WASM heap plus the JS buffers a step returns under 100 MB, on both
// backends, with the shipped model. Its own file: the heap gauge reports the largest WASM memory in
// the process.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startFixtureServer } from "./helpers/server.js";

const MODEL_DIR = join(import.meta.dirname, "../model");
const WORKERS = { LOW_MEMORY: "1", MAX_BATCH: "4", MAX_QUEUE: "16", MAX_TOKENS_LIMIT: "512", API_KEY: "k" };
/** What one prefill step of echo + logprobs hands to JS at most: 64 positions × vocabulary × (logits, probs). */
const STEP_OUTPUT_BYTES = 64 * 8192 * 4 * 2;

describe.each(["simd", "ort"])("Workers settings, ENGINE=%s", (engine) => {
  it("the largest admitted request (8 choices, echo + logprobs, a 500-token prompt) stays under 100 MB", async () => {
    const server = await startFixtureServer({ ...WORKERS, MODEL_DIR, ENGINE: engine });
    try {
      const prompt = Array.from({ length: 500 }, (_, i) => 300 + ((i * 37) % 4000));
      const res = await fetch(`${server.baseURL}/v1/completions`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer k" },
        body: JSON.stringify({ model: "tinylm-edge-14m", prompt, n: 8, echo: true, logprobs: 5, max_tokens: 10 }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: { logprobs: { token_logprobs: (number | null)[] } }[] };
      expect(body.choices).toHaveLength(8);
      expect(body.choices[0].logprobs.token_logprobs.length).toBeGreaterThanOrEqual(500);
      const metrics = await (await fetch(`${server.baseURL}/metrics`, { headers: { Authorization: "Bearer k" } })).text();
      const heap = Number(/^tinylm_wasm_heap_bytes (\d+)/m.exec(metrics)?.[1]);
      console.log(`ENGINE=${engine}: WASM heap after the largest request ${(heap / 2 ** 20).toFixed(1)} MiB`);
      expect(heap + STEP_OUTPUT_BYTES).toBeLessThan(100 * 2 ** 20);
    } finally {
      await server.close();
    }
  });
});
