// THREADS=2 on the Node host: the shipped model's matrix products shared with a second thread
// (kernels/threads.c; bit for bit one thread's results: test/simd-threads.test.ts), said in
// /v1/models. A file of its own: onnxruntime-web's thread count is fixed once per process.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNodeServer } from "../src/hosts/node.js";

describe("THREADS=2 on the Node host", () => {
  let started: Awaited<ReturnType<typeof startNodeServer>>;
  beforeAll(async () => {
    started = await startNodeServer({ MODEL_DIR: join(import.meta.dirname, "../model"), THREADS: "2", PORT: "0", HOST: "127.0.0.1", LOG: "quiet" });
    await started.loaded;
  }, 120_000);
  afterAll(() => new Promise<void>((resolve) => (started ? started.server.close(() => resolve()) : resolve())));

  it("serves on our kernels with 2 threads and /v1/models says so", async () => {
    const base = `http://127.0.0.1:${started.port}`;
    const models = await (await fetch(`${base}/v1/models`)).json();
    expect(models.data[0].meta).toMatchObject({ engine: "simd", kernels: "relaxed-simd", kernel_threads: 2 });
    const prompt = "Once upon a time there was a little girl who lived in a village near the forest. ".repeat(4); // > 64 tokens: two prefill chunks
    const res = await fetch(`${base}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ model: models.data[0].id, prompt, max_tokens: 16, temperature: 0 }) });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.usage.prompt_tokens).toBeGreaterThan(64);
    expect(body.usage.completion_tokens).toBe(16);
  });
});
