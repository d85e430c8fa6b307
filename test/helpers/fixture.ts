// The exported test fixture model and its PyTorch reference data.
import { join } from "node:path";
import { OnnxDecoder } from "../../src/engine/onnx-model.js";
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
