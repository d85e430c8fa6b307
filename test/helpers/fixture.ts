// The exported test fixture model and its PyTorch reference data.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { OnnxDecoder } from "../../src/engine/onnx-model.js";
import { SimdDecoder } from "../../src/engine/simd/decoder.js";
import { llamaWeights } from "../../src/engine/simd/llama-weights.js";
import { readOnnx } from "../../src/engine/simd/onnx-reader.js";
import { ModelFolder, validationTokens as folderTokens } from "../../scripts/parity.js";

export const FIXTURE_DIR = join(import.meta.dirname, "../fixtures/tiny-model");
export const TINY_SHARDS = join(import.meta.dirname, "../fixtures/shards-8k-tiny");
export const fixture = new ModelFolder(FIXTURE_DIR);
export const parity = fixture.parity;

export const webDecoder = (file: string) => fixture.webDecoder(file);

export async function nativeDecoder(file: string): Promise<OnnxDecoder> {
  const ortNode = await import("onnxruntime-node");
  const session = await ortNode.InferenceSession.create(join(FIXTURE_DIR, file), { intraOpNumThreads: 1 });
  return new OnnxDecoder(session as never, ortNode.Tensor as never, fixture.shape);
}

/** Validation tokens of the tiny real shards (compact 8k vocabulary). */
export const validationTokens = (count: number) => folderTokens(TINY_SHARDS, count);

export const KERNELS_WASM = join(import.meta.dirname, "../../src/engine/simd/kernels.wasm");

/** Our WASM SIMD kernels on a graph of the fixture folder (the int8 one unless told). */
export async function simdDecoder(file = "onnx/model_quantized.onnx"): Promise<SimdDecoder> {
  const module = await WebAssembly.compile(readFileSync(KERNELS_WASM));
  return SimdDecoder.create(module, llamaWeights(readOnnx(readFileSync(join(FIXTURE_DIR, file))), fixture.config));
}
