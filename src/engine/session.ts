// Creating the onnxruntime-web session. Hosts configure ort.env.wasm (binary, threads) first; the
// options here are the ones that keep the WASM heap small (Workers allow 128 MB per isolate).
import type * as Ort from "onnxruntime-web";
import { OnnxDecoder, type ModelShape } from "./onnx-model.js";

export type OrtModule = typeof Ort;

export interface SessionOptions {
  /** Lower memory at some speed cost (arena off, no memory pattern, no prepacking). */
  lowMemory?: boolean;
}

export async function createDecoder(ort: OrtModule, modelBytes: Uint8Array, shape: ModelShape, opts: SessionOptions = {}): Promise<OnnxDecoder> {
  const options: Ort.InferenceSession.SessionOptions = {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  };
  if (opts.lowMemory) {
    options.enableCpuMemArena = false;
    options.enableMemPattern = false;
    options.extra = { session: { disable_prepacking: "1" } };
  }
  const session = await ort.InferenceSession.create(modelBytes, options);
  return new OnnxDecoder(session, ort.Tensor, shape);
}
