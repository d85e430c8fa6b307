// Creating the onnxruntime-web session. Hosts configure ort.env.wasm (binary, threads) first; the
// options here are the ones that keep the WASM heap small (Workers allow 128 MB per isolate).
import type * as Ort from "onnxruntime-web";
import type { ModelShape } from "../decoder.js";
import { OnnxDecoder } from "./onnx-model.js";
import { StandardOnnxDecoder } from "./standard-onnx-model.js";

export type OrtModule = typeof Ort;

export interface SessionOptions {
  /** Lower memory at some speed cost (arena off, no memory pattern, no prepacking). */
  lowMemory?: boolean;
  /** Files the graph's external data points to, by the location the graph names. */
  externalData?: { path: string; data: Uint8Array }[];
  /** The graph's file, for error messages. */
  source?: string;
}

/**
 * A decoder for the graph in whichever contract it follows: ours (a new_kv output: our exporter's
 * .tinylm.onnx graphs) or the standard one (present.{i} outputs: Optimum, transformers.js).
 */
export async function createDecoder(ort: OrtModule, modelBytes: Uint8Array, shape: ModelShape, opts: SessionOptions = {}): Promise<OnnxDecoder | StandardOnnxDecoder> {
  const options: Ort.InferenceSession.SessionOptions = {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  };
  if (opts.lowMemory) {
    options.enableCpuMemArena = false;
    options.enableMemPattern = false;
    options.extra = { session: { disable_prepacking: "1" } };
  }
  if (opts.externalData) options.externalData = opts.externalData;
  const session = await ort.InferenceSession.create(modelBytes, options);
  const source = opts.source ?? "model.onnx";
  const logits = session.outputMetadata?.find((m) => m.name === "logits");
  const width = logits?.isTensor ? logits.shape.at(-1) : undefined;
  if (typeof width === "number" && width !== shape.vocabSize) {
    throw new Error(`${source}: the graph's logits have ${width} entries per position, config.json's vocab_size is ${shape.vocabSize}`);
  }
  if (session.outputNames.includes("new_kv")) return new OnnxDecoder(session, ort.Tensor, shape);
  if (session.outputNames.includes("present.0.key") || session.outputNames.includes("logits")) {
    return new StandardOnnxDecoder(session, ort.Tensor, shape, source);
  }
  throw new Error(`${source}: outputs [${session.outputNames.join(", ")}] follow no decoder contract this server knows ` +
    `(a "logits" output and "present.{i}.key/value", or tinylm's "new_kv")`);
}
