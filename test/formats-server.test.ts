// The Node host serving checkpoints as they come from a hub: MODEL_DIR as a safetensors folder and as
// a .gguf file itself; /v1/models says format, quantization and backend.
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startNodeServer } from "../src/hosts/node.js";
import { checkpointFixtures } from "./helpers/interop-fixtures.js";

const ROOT = checkpointFixtures();

describe.each([
  ["a safetensors folder", join(ROOT, "qwen3-safetensors"), "safetensors", ["model.safetensors"]],
  ["a .gguf file", join(ROOT, "llama-gguf/model.gguf"), "gguf", ["model.gguf"]],
])("MODEL_DIR = %s", (_, modelDir, format, files) => {
  const started = startNodeServer({ MODEL_DIR: modelDir, PORT: "0", HOST: "127.0.0.1", LOG: "quiet" }).then(async (s) => {
    await s.loaded;
    return s;
  });
  afterAll(async () => {
    const { server } = await started;
    await new Promise((r) => server.close(r));
  });

  it("serves completions on our kernels; /v1/models meta names format, quantization and backend", async () => {
    const { port } = await started;
    const base = `http://127.0.0.1:${port}`;
    const models = await (await fetch(`${base}/v1/models`)).json();
    expect(models.data[0].meta).toMatchObject({ format, weight_files: files, engine: "simd", engine_fallback_reason: null, onnx_file: null });
    expect(models.data[0].meta.quantization).toMatch(/^projections [48]-bit, a scale per (row|32 values), embedding [48]-bit, a scale per (row|32 values); from /);
    const res = await fetch(`${base}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ model: models.data[0].id, prompt: "Once upon a time", max_tokens: 5, temperature: 0 }) });
    const body = await res.json();
    expect([res.status, body.error?.message]).toEqual([200, undefined]);
    expect(body.usage.completion_tokens).toBe(5);
    expect(typeof body.choices[0].text).toBe("string");
  });
});
