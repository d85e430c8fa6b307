// The decoder backends and the choice between them: our WebAssembly SIMD kernels (simd/) when they
// can run the model and ENGINE allows, else onnxruntime-web (ort/) on the folder's ONNX graph. The
// kernels take our exporter's int8 graph as it is (llamaWeights), and a standard graph (Optimum,
// transformers.js) through its weights lifted out of it (formats/onnx-lift.ts).
import type { Decoder, ModelShape } from "./decoder.js";
import { createDecoder, type OrtModule } from "./ort/session.js";
import { StandardOnnxDecoder } from "./ort/standard-onnx-model.js";
import { SimdDecoder, type HelperThread, type KvCacheKind } from "./simd/decoder.js";
import type { Placeable } from "./simd/heap.js";
import { describeQuantization, isOurExport, kernelWeights, llamaWeights, UnsupportedModel, type LlamaWeights, type WeightBits } from "./simd/llama-weights.js";
import { liftOnnx } from "../formats/onnx-lift.js";
import { FormatError, type WeightDescription } from "../formats/weights.js";
import { readOnnx, type OnnxGraph } from "./simd/onnx-reader.js";

/** Reads a file of the model folder by relative path; throws an Error naming it when missing. */
export type ReadModelFile = (path: string) => Promise<Uint8Array>;
/** Checks a file's bytes (the model loader compares them with manifest.json's sha256); throws when they differ. */
export type VerifyFile = (path: string, bytes: Uint8Array) => Promise<void>;

/** ENGINE: our WASM SIMD kernels, onnxruntime-web, or ours when the model is one they support. */
export type BackendChoice = "auto" | "simd" | "ort";

/** The graph onnxruntime-web runs, and the decoder contract it follows. */
export interface OrtGraphInfo {
  file: string;
  contract: "tinylm" | "standard";
}

export interface BackendOptions {
  /** null in a build without onnxruntime-web (the Workers ENGINE=simd build): a model only it can run is an error saying so. */
  ort: OrtModule | null;
  backend?: BackendChoice; // default "auto"
  /** The compiled kernels.wasm (hosts load it as they load ORT's .wasm). Required unless backend is "ort". */
  kernels?: () => Promise<WebAssembly.Module>;
  /** The compiled relaxed.wasm, or null where the runtime lacks relaxed SIMD (then plain SIMD128 kernels run). */
  relaxed?: () => Promise<WebAssembly.Module | null>;
  /** Where the one line saying why "auto" fell back to onnxruntime-web goes (default console.warn). */
  log?: (line: string) => void;
  onnxFile: string; // e.g. "onnx/model_quantized.onnx"
  lowMemory?: boolean;
  /** The kernels' KV cache element type (default DEFAULT_KV_CACHE). */
  kvCache?: KvCacheKind;
  /** Bits per weight our kernels make a safetensors / GGUF checkpoint's projections into (default 8; WeightBits). */
  weightBits?: WeightBits;
  /** Where the host has threads and THREADS ≥ 2: our kernels' second thread (Node: workerHelperThread). */
  helper?: () => Promise<HelperThread>;
}

const NO_ORT = "this build has no onnxruntime-web (the Workers ENGINE=simd build, wrangler.simd.toml): deploy with wrangler.toml to serve graphs only onnxruntime-web runs";

/**
 * Our kernels when they can run the graph (and ENGINE allows), else onnxruntime-web. `quantization`
 * says what the kernels made of a lifted graph's weights (null: our graph's, as manifest.json says).
 */
export async function createBackend(read: ReadModelFile, bytes: Uint8Array, config: Record<string, unknown>, shape: ModelShape, opts: BackendOptions, verify: VerifyFile = async () => {}):
  Promise<{ decoder: Decoder; reason: string | null; graph: OrtGraphInfo | null; quantization: string | null }> {
  const choice = opts.backend ?? "auto";
  let reason: string | null = choice === "ort" ? "ENGINE=ort" : null;
  if (choice !== "ort") {
    if (!opts.kernels) throw new Error("the host did not provide kernels.wasm (set ENGINE=ort to use onnxruntime-web)");
    let graph;
    try {
      graph = readOnnx(bytes);
    } catch (err) {
      throw new Error(`${opts.onnxFile}: not a readable ONNX file (${(err as Error).message})`);
    }
    try {
      const { weights, lifted, quantization } = graphKernelWeights(graph, config, opts.onnxFile, opts.weightBits);
      const decoder = await kernelDecoder(weights, opts);
      if (lifted) (opts.log ?? console.warn)(`tinylm-edge: ${opts.onnxFile} (a standard ONNX graph, ${lifted.arch.modelType}) runs on our WASM kernels, its weights lifted out: ${quantization}`);
      return { decoder, reason: null, graph: null, quantization };
    } catch (err) {
      // FormatError: the lifter could not account for the graph (formats/onnx-lift.ts), or config.json names an architecture the kernels lack.
      if (!(err instanceof UnsupportedModel || err instanceof FormatError)) throw new Error(`${opts.onnxFile}: ${(err as Error).message}`);
      if (choice === "simd") throw new Error(`ENGINE=simd, but the kernels cannot run ${opts.onnxFile}: ${err.message}`);
      reason = err.message;
      if (opts.ort) (opts.log ?? console.warn)(`tinylm-edge: ${opts.onnxFile} runs on onnxruntime-web: the WASM SIMD kernels cannot run it (${reason})`);
    }
  }
  const ort = opts.ort;
  if (!ort) throw new Error(choice === "ort" ? `ENGINE=ort, but ${NO_ORT}` : `the kernels cannot run ${opts.onnxFile} (${reason}), and ${NO_ORT}`);
  const graph = await ortGraph(read, opts.onnxFile, bytes, verify);
  const decoder = await createDecoder(ort, graph.bytes, shape, { lowMemory: opts.lowMemory, ...graph });
  return { decoder, reason, graph: { file: graph.source, contract: decoder instanceof StandardOnnxDecoder ? "standard" : "tinylm" }, quantization: null };
}

/**
 * An ONNX graph as our kernels' weights: our exporter's as it is, a standard one (Optimum,
 * transformers.js) through its weights lifted out (formats/onnx-lift.ts) and quantized at `bits`,
 * with what the kernels made of them (`quantization`, null for our graph: manifest.json says).
 * UnsupportedModel or FormatError when the kernels cannot run it.
 */
export function graphKernelWeights(graph: OnnxGraph, config: Record<string, unknown>, file: string, bits: WeightBits = 8):
  { weights: LlamaWeights; lifted: WeightDescription | null; quantization: string | null } {
  if (isOurExport(graph)) return { weights: llamaWeights(graph, config), lifted: null, quantization: null };
  const lifted = liftOnnx(graph, config, file), weights = kernelWeights(lifted, bits);
  return { weights, lifted, quantization: describeQuantization(lifted, weights) };
}

/**
 * A safetensors or GGUF checkpoint (src/formats/) on our kernels, quantized at load: the only backend
 * for them (onnxruntime-web runs ONNX graphs), so ENGINE=ort is an error that says so.
 */
export async function createKernelBackend(description: WeightDescription, opts: BackendOptions): Promise<{ decoder: SimdDecoder; quantization: string }> {
  const files = description.files.join(", ");
  if (opts.backend === "ort") throw new Error(`ENGINE=ort, but onnxruntime-web runs ONNX graphs only; ${files} (${description.format}) runs on our WASM kernels (ENGINE=auto or simd)`);
  if (!opts.kernels) throw new Error(`the host did not provide kernels.wasm, which ${files} (${description.format}) needs`);
  const weights = kernelWeights(description, opts.weightBits);
  return { decoder: await kernelDecoder(weights, opts), quantization: describeQuantization(description, weights) };
}

/** Our kernels on weights already in their layout (a folder's pack, src/packed.ts, or a conversion). */
export async function kernelDecoder(weights: Placeable<LlamaWeights>, opts: BackendOptions): Promise<SimdDecoder> {
  if (!opts.kernels) throw new Error("the host did not provide kernels.wasm");
  const relaxed = (await opts.relaxed?.()) ?? null;
  return SimdDecoder.create(await opts.kernels(), weights, relaxed, {}, opts.kvCache, (await opts.helper?.()) ?? null);
}

/** Our exporter's graph in tinylm's own contract, beside the standard one it reads its weights from. */
export const tinylmGraphFile = (onnxFile: string): string => onnxFile.replace(/(\.tinylm)?\.onnx$/, ".tinylm.onnx");

/**
 * What onnxruntime-web runs for ONNX_FILE: the .tinylm.onnx graph beside it when the folder has one
 * (our server's faster contract; its weights are external data pointing into ONNX_FILE), else ONNX_FILE.
 */
export async function ortGraph(read: ReadModelFile, onnxFile: string, onnxBytes: Uint8Array, verify: VerifyFile = async () => {}):
  Promise<{ bytes: Uint8Array; source: string; externalData?: { path: string; data: Uint8Array }[] }> {
  const fast = tinylmGraphFile(onnxFile);
  if (fast === onnxFile) return { bytes: onnxBytes, source: onnxFile };
  const bytes = await read(fast).catch(() => null);
  if (!bytes) return { bytes: onnxBytes, source: onnxFile };
  await verify(fast, bytes);
  return { bytes, source: fast, externalData: [{ path: onnxFile.split("/").pop()!, data: onnxBytes }] };
}

