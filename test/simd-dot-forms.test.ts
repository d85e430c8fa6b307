// relaxed.wasm's two forms of its dot-product functions (kernels/relaxed.wat's header,
// src/engine/simd/relaxed.ts): the split form gives the fused form's results bit for bit, for every
// weight kind and path and for the shipped model end to end; RELAXED_SIMD pins the form.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KernelMatmul, SimdDecoder, type KvCacheKind } from "../src/engine/simd/decoder.js";
import { llamaWeights } from "../src/engine/simd/llama-weights.js";
import { readOnnx } from "../src/engine/simd/onnx-reader.js";
import { quantizeMatrix, type MatrixKind } from "../src/engine/simd/quantize.js";
import { compileRelaxed, dotForm, withDotForm, type DotForm } from "../src/engine/simd/relaxed.js";
import { settingsFrom } from "../src/hosts/config.js";
import { nodeOrt } from "../src/node-runtime.js";
import { chunksDecodeBatch, firstDifference, values } from "./helpers/bits.js";
import { KERNELS_WASM, RELAXED_WASM } from "./helpers/fixture.js";

const KINDS: MatrixKind[] = ["q7", "q8", "q8_32", "q4_32"];
const SHIPPED = join(import.meta.dirname, "../model");

async function modules(form: DotForm) {
  nodeOrt(1); // the Node host's V8 flags
  return { kernels: await WebAssembly.compile(readFileSync(KERNELS_WASM)), relaxed: withDotForm(await WebAssembly.compile(readFileSync(RELAXED_WASM)), form) };
}

describe("relaxed.wasm's split form", () => {
  it.each(KINDS)("%s: the fused form's products bit for bit (1–9 rows: GEMV, row tiles, odd last rows, groups left over)", async (kind) => {
    const fused = await KernelMatmul.create((await modules("fused")).kernels, (await modules("fused")).relaxed);
    const split = await KernelMatmul.create((await modules("split")).kernels, (await modules("split")).relaxed);
    expect([fused.dot, split.dot]).toEqual(["fused", "split"]);
    // 100 × 264 and 44 × 272: rows and columns off the passes' grids (7- and 8-bit rows); 36 × 1024
    // and 1,040 × 256: the 4-bit one-row pass's 16 outputs with 4 and 0 left over, and long rows.
    const shapes = kind === "q7" || kind === "q8" ? [[96, 256], [100, 264], [44, 272]] : [[96, 256], [36, 1024], [1040, 256]];
    for (const [rows, cols] of shapes) {
      const m = quantizeMatrix(values(rows * cols, rows + cols), rows, cols, kind);
      for (let n = 1; n <= 9; n++) {
        const x = values(n * cols, 7 * n);
        expect(firstDifference([split.run(split.load(m), x, n)], [fused.run(fused.load(m), x, n)]), `${rows} × ${cols}, ${n} rows`).toBe("same");
      }
    }
  });

  it.each(["f32", "int8"] as KvCacheKind[])("the shipped model, KV %s: prefill, decode and a batch give the fused form's logits bit for bit", async (kvCache) => {
    const weights = llamaWeights(readOnnx(readFileSync(join(SHIPPED, "onnx/model_quantized.onnx"))), JSON.parse(readFileSync(join(SHIPPED, "config.json"), "utf8")));
    const run = async (form: DotForm) => {
      const { kernels, relaxed } = await modules(form);
      const dec = await SimdDecoder.create(kernels, weights, relaxed, {}, kvCache);
      expect(dec.dot).toBe(form);
      return chunksDecodeBatch(dec);
    };
    expect(firstDifference(await run("split"), await run("fused"))).toBe("same");
  });
});

describe("RELAXED_SIMD", () => {
  it("fused or split pins the form; unset, 1 or auto takes the one timed once per process; 0 turns relaxed SIMD off; anything else is refused", async () => {
    nodeOrt(1);
    const bytes = async () => new Uint8Array(readFileSync(RELAXED_WASM));
    for (const form of ["fused", "split"] as const) expect(dotForm((await compileRelaxed(bytes, form))!)).toBe(form);
    const timed = (await compileRelaxed(bytes))!;
    const form = dotForm(timed);
    expect(["fused", "split"]).toContain(form);
    expect(dotForm((await compileRelaxed(bytes))!)).toBe(form); // timed once per process
    expect(await compileRelaxed(bytes, "0")).toBeNull();
    for (const ok of ["", "1", "auto", "fused", "split", "0"]) expect(() => settingsFrom({ RELAXED_SIMD: ok })).not.toThrow();
    for (const bad of ["on", "vnni", "2"]) expect(() => settingsFrom({ RELAXED_SIMD: bad })).toThrow(`RELAXED_SIMD must be auto (or 1), fused, split or 0, got "${bad}"`);
  });
});
