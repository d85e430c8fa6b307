// The exported test fixture model and its PyTorch reference data.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ortWeb from "onnxruntime-web/wasm";
import { createRequire } from "node:module";
import { modelShapeFromConfig, OnnxDecoder } from "../../src/engine/onnx-model.js";
import { createDecoder } from "../../src/engine/session.js";

export const FIXTURE_DIR = join(import.meta.dirname, "../fixtures/tiny-model");
export const TINY_SHARDS = join(import.meta.dirname, "../fixtures/shards-8k-tiny");

export const fixtureConfig = JSON.parse(readFileSync(join(FIXTURE_DIR, "config.json"), "utf8"));
export const fixtureShape = modelShapeFromConfig(fixtureConfig);

export interface ParityCases {
  vocab_size: number;
  cases: (
    | { kind: "single"; prompt: number[]; steps: { input: number[]; row: number }[] }
    | { kind: "batch"; input_ids: number[][]; attention_mask: number[][]; steps: { input?: number[]; rows: number[] }[] }
  )[];
  greedy: { prompt: number[]; tokens: number[] }[];
}

export const parity: ParityCases = JSON.parse(readFileSync(join(FIXTURE_DIR, "parity/cases.json"), "utf8"));
const logitsBytes = readFileSync(join(FIXTURE_DIR, "parity/logits.f32"));
export const referenceLogits = new Float32Array(logitsBytes.buffer, logitsBytes.byteOffset, logitsBytes.byteLength / 4);

export function referenceRow(row: number): Float32Array {
  const v = fixtureShape.vocabSize;
  return referenceLogits.subarray(row * v, (row + 1) * v);
}

let wasmReady = false;
export async function webDecoder(file: string): Promise<OnnxDecoder> {
  if (!wasmReady) {
    ortWeb.env.wasm.wasmBinary = readFileSync(createRequire(import.meta.url).resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm"));
    ortWeb.env.wasm.numThreads = 1;
    ortWeb.env.logLevel = "error";
    wasmReady = true;
  }
  return createDecoder(ortWeb, readFileSync(join(FIXTURE_DIR, file)), fixtureShape);
}

export async function nativeDecoder(file: string): Promise<OnnxDecoder> {
  const ortNode = await import("onnxruntime-node");
  const session = await ortNode.InferenceSession.create(join(FIXTURE_DIR, file), { intraOpNumThreads: 1 });
  return new OnnxDecoder(session as never, ortNode.Tensor as never, fixtureShape);
}

/** Validation tokens of the tiny real shards (compact 8k vocabulary). */
export function validationTokens(count: number): number[] {
  const index = JSON.parse(readFileSync(join(TINY_SHARDS, "index.json"), "utf8"));
  const out: number[] = [];
  for (const e of index.splits.val) {
    const b = readFileSync(join(TINY_SHARDS, `${e.shard}.bin`));
    out.push(...new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2));
    if (out.length >= count) break;
  }
  return out.slice(0, count);
}
