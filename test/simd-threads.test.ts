// Two threads for the kernels' matrix products (kernels/threads.c, THREADS=2 on Node): each kind ×
// plain SIMD128 / relaxed SIMD, and the shipped model end to end, give bit for bit the results of
// one thread, with the split landing inside and at the edges of the kernels' passes.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KernelMatmul, SimdDecoder, type HelperThread, type KernelVariant, type KvCacheKind } from "../src/engine/simd/decoder.js";
import { llamaWeights } from "../src/engine/simd/llama-weights.js";
import { readOnnx } from "../src/engine/simd/onnx-reader.js";
import { quantizeMatrix, type MatrixKind } from "../src/engine/simd/quantize.js";
import { nodeOrt } from "../src/node-runtime.js";
import { workerHelperThread } from "../src/engine/simd/worker-threads.js";
import { chunksDecodeBatch, firstDifference, values } from "./helpers/bits.js";
import { KERNELS_WASM, RELAXED_WASM } from "./helpers/fixture.js";

const KINDS: MatrixKind[] = ["q7", "q8", "q8_32", "q4_32"];
const VARIANTS: KernelVariant[] = ["simd128", "relaxed-simd"];
const SHIPPED = join(import.meta.dirname, "../model");

async function builds(variant: KernelVariant): Promise<{ kernels: WebAssembly.Module; relaxed: WebAssembly.Module | null; helper: HelperThread }> {
  nodeOrt(1); // the Node host's V8 flags
  const relaxedSetting = variant === "relaxed-simd" ? undefined : "0";
  return {
    kernels: await WebAssembly.compile(readFileSync(KERNELS_WASM)),
    relaxed: variant === "relaxed-simd" ? await WebAssembly.compile(readFileSync(RELAXED_WASM)) : null,
    helper: await workerHelperThread(relaxedSetting),
  };
}

const closers: { close(): void }[] = [];
afterAll(() => closers.forEach((c) => c.close()));

describe.each(VARIANTS)("matrix products on two threads (%s)", (variant) => {
  it.each(KINDS)("%s: the same bits as on one thread, the helper taking the output rows from a multiple of 16", async (kind) => {
    const { kernels, relaxed, helper } = await builds(variant);
    const one = await KernelMatmul.create(kernels, relaxed);
    const two = await KernelMatmul.create(kernels, relaxed, helper);
    closers.push(two);
    expect([one.variant, two.variant, one.threads, two.threads]).toEqual([variant, variant, 1, 2]);
    // Above threads.c's bound (2^18 multiply-adds): 1,040 or 1,000 outputs at 1 row (the relaxed
    // single-row passes), 200 or 196 at 16 and 13 rows (row tiles and an odd last row); 196 and
    // 1,000 are no multiple of 32, so the helper's share ends in a part-pass.
    const shapes = kind === "q7" || kind === "q8" ? [[1000, 272, 1], [200, 264, 16], [196, 272, 13]] : [[1040, 256, 1], [200, 256, 16], [196, 288, 13]];
    for (const [rows, cols, n] of shapes) {
      const m = quantizeMatrix(values(rows * cols, rows + cols), rows, cols, kind);
      const x = values(n * cols, 11 * n);
      expect(firstDifference([two.run(two.load(m), x, n)], [one.run(one.load(m), x, n)]), `${rows} × ${cols}, ${n} rows`).toBe("same");
    }
  });
});

describe.each(VARIANTS)("the shipped model on two threads (%s)", (variant) => {
  it.each(["f32", "int8"] as KvCacheKind[])("KV %s: prefill chunks, decode and a batch give one thread's logits bit for bit", async (kvCache) => {
    const { kernels, relaxed, helper } = await builds(variant);
    const weights = llamaWeights(readOnnx(readFileSync(join(SHIPPED, "onnx/model_quantized.onnx"))), JSON.parse(readFileSync(join(SHIPPED, "config.json"), "utf8")));
    const one = await SimdDecoder.create(kernels, weights, relaxed, {}, kvCache);
    const two = await SimdDecoder.create(kernels, weights, relaxed, {}, kvCache, helper);
    closers.push(two);
    expect(two.threads).toBe(2);
    expect(firstDifference(await chunksDecodeBatch(two), await chunksDecodeBatch(one))).toBe("same");
  });
});

describe("the helper thread's start", () => {
  it("a helper that ends before its loop is an error at load, not a hang", async () => {
    const { kernels, relaxed, helper } = await builds("relaxed-simd");
    const weights = llamaWeights(readOnnx(readFileSync(join(SHIPPED, "onnx/model_quantized.onnx"))), JSON.parse(readFileSync(join(SHIPPED, "config.json"), "utf8")));
    const dead: HelperThread = { ...helper, start: (_, exited) => setTimeout(exited, 5) };
    await expect(SimdDecoder.create(kernels, weights, relaxed, {}, "f32", dead)).rejects.toThrow(/helper thread ended before its loop started/);
  });
});

describe("THREADS", () => {
  it("our kernels: 1 by default, 2 from THREADS=2 where the host has 2 cores or more; onnxruntime-web: THREADS, 1 by default", async () => {
    const { settingsFrom } = await import("../src/hosts/config.js");
    expect(settingsFrom({}, { cores: 2 })).toMatchObject({ kernelThreads: 1, ortThreads: 1 });
    expect(settingsFrom({ THREADS: "2" }, { cores: 2 })).toMatchObject({ kernelThreads: 2, ortThreads: 2 });
    expect(settingsFrom({ THREADS: "2" }, { cores: 1 })).toMatchObject({ kernelThreads: 1, ortThreads: 2 });
    expect(settingsFrom({ THREADS: "4" }, { cores: 8 })).toMatchObject({ kernelThreads: 2, ortThreads: 4 });
    for (const bad of ["0", "two", "1.5"]) expect(() => settingsFrom({ THREADS: bad })).toThrow(`THREADS must be an integer of at least 1, got "${bad}"`);
  });
});
