// The exported test fixture model and its PyTorch reference data.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { OnnxDecoder } from "../../src/engine/ort/onnx-model.js";
import { SimdDecoder, type KernelVariant, type KvCacheKind } from "../../src/engine/simd/decoder.js";
import { tinylmGraphFile } from "../../src/engine/backends.js";
import { nodeOrt } from "../../src/node-runtime.js";
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
  const fast = join(FIXTURE_DIR, tinylmGraphFile(file)); // as the server runs it (external data resolved from disk)
  const session = await ortNode.InferenceSession.create(existsSync(fast) ? fast : join(FIXTURE_DIR, file), { intraOpNumThreads: 1 });
  return new OnnxDecoder(session as never, ortNode.Tensor as never, fixture.shape);
}

/** Validation tokens of the tiny real shards (compact 8k vocabulary). */
export const validationTokens = (count: number) => folderTokens(TINY_SHARDS, count);

export const KERNELS_WASM = join(import.meta.dirname, "../../src/engine/simd/kernels.wasm");
export const RELAXED_WASM = join(import.meta.dirname, "../../src/engine/simd/relaxed.wasm");

/** Our WASM SIMD kernels on the fixture's int8 graph: plain SIMD128 or relaxed SIMD matrix kernels, an f32 or int8 KV cache. */
export async function simdDecoder(variant: KernelVariant = "simd128", file = "onnx/model_quantized.onnx", kvCache: KvCacheKind = "f32"): Promise<SimdDecoder> {
  nodeOrt(1); // the Node host's V8 flags, relaxed SIMD among them
  const module = await WebAssembly.compile(readFileSync(KERNELS_WASM));
  const relaxed = variant === "relaxed-simd" ? await WebAssembly.compile(readFileSync(RELAXED_WASM)) : null;
  return SimdDecoder.create(module, llamaWeights(readOnnx(readFileSync(join(FIXTURE_DIR, file))), fixture.config), relaxed, {}, kvCache);
}

/** A model folder on disk as the loader reads it (a missing file is an Error naming it). */
export const folderReader = (dir: string) => async (path: string): Promise<Uint8Array> => {
  try {
    return new Uint8Array(readFileSync(join(dir, path)));
  } catch {
    throw new Error(`${path}: not found in the model folder`);
  }
};
