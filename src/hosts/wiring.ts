// What every host does the same way once it can read files: settings → model handle → app. A host
// supplies only what its runtime does differently: how the model folder's files and the two .wasm
// modules are read, and which onnxruntime-web build it set up; it then listens and shuts down its own way.
import { createApp } from "../app.js";
import type { ReadModelFile } from "../engine/backends.js";
import type { HelperThread } from "../engine/simd/decoder.js";
import type { OrtModule } from "../engine/ort/session.js";
import { loadModel, ModelHandle, type LoadedModel } from "../model.js";
import type { HostSettings } from "./config.js";

export interface RuntimeParts {
  /** null: a build without onnxruntime-web (Workers' ENGINE=simd build, src/hosts/worker-simd.ts). */
  ort: OrtModule | null;
  read: ReadModelFile;
  /** The compiled kernels.wasm, and relaxed.wasm or null where relaxed SIMD is off or missing. */
  kernels: () => Promise<WebAssembly.Module>;
  relaxed: () => Promise<WebAssembly.Module | null>;
  /** Our kernels' second thread, where the host has threads and THREADS ≥ 2 (Node). */
  helper?: () => Promise<HelperThread>;
  /** Run the model once before serving (servers; Workers skip it: an isolate's first request pays instead). */
  warmUp: boolean;
  /** A .gguf file named by MODEL_DIR, and the folder's file names where the host can list them (src/formats/checkpoint.ts). */
  weightsFile?: string;
  files?: string[];
  /** Wraps the load (Workers: ORT's precompiled-module shim). */
  around?: (load: () => Promise<LoadedModel>) => Promise<LoadedModel>;
}

export function wireHost(settings: HostSettings, parts: RuntimeParts): { handle: ModelHandle; app: ReturnType<typeof createApp> } {
  const { ort, read, kernels, relaxed, helper, warmUp, weightsFile, files, around = (load) => load() } = parts;
  const handle = new ModelHandle(() => around(() => loadModel(read, {
    ort, kernels, relaxed, helper, backend: settings.backend, onnxFile: settings.onnxFile, weightsFile, files, engine: settings.engine, lowMemory: settings.lowMemory, kvCache: settings.kvCache, weightBits: settings.weightBits, maxContext: settings.maxContext, warmUp,
  })));
  return { handle, app: createApp(handle, settings.app) };
}

/** The one line a host logs when the model is ready. */
export function readyLine(m: LoadedModel): string {
  return `${m.id} (${m.weights.files.join(", ")}, ${m.backend.name === "simd" ? `our WASM kernels, ${m.backend.kernels}${m.backend.dot ? ` (${m.backend.dot} dot)` : ""}${m.backend.threads === 2 ? ", 2 threads" : ""}` : "onnxruntime-web"})`;
}

/** A file-system error as a client may see it: the path within the model folder and the reason, nothing of ours. */
export function missingFile(path: string, notFound: boolean, reason: string): Error {
  return new Error(`${path}: ${notFound ? "not found in the model folder" : reason}`);
}
