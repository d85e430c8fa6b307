// Which checkpoint a model folder holds, and its weight description. A folder as it comes from a hub
// (config.json, tokenizer.json, model.safetensors or a sharded index), a folder holding one .gguf,
// or our exporter's folder (ONNX_FILE, onnx/model_quantized.onnx by default). Safetensors and GGUF
// are read here; ONNX stays with the engine's backends (our graph on the kernels, any graph on
// onnxruntime-web).
import { ggufDescription, ggufVocab, parseGguf } from "./gguf.js";
import { readSafetensorsFolder, SAFETENSORS_FILE, SAFETENSORS_INDEX } from "./safetensors.js";
import { FormatError, type WeightDescription } from "./weights.js";
import type { GgufVocab } from "../tokenizer/gguf-vocab.js";

export type CheckpointFormat = "onnx" | "safetensors" | "gguf";

export interface LocateOptions {
  /** The ONNX graph our exporter's folders name (ONNX_FILE). */
  onnxFile: string;
  /** A weights file named by the host (MODEL_DIR pointing at a .gguf file). */
  weightsFile?: string;
  /** The folder's file names, where the host can list them (then a .gguf of any name is found). */
  files?: string[];
  /** manifest.json's files: where the host cannot list the folder, those it lists are taken as present. */
  listed?: Record<string, unknown>;
}

export interface Checkpoint {
  format: CheckpointFormat;
  /** The file that says which: the ONNX graph, model.safetensors(.index.json), or the .gguf. */
  file: string;
  /** Its bytes, where finding it meant reading it (a host that cannot list the folder): not read twice. */
  bytes?: Uint8Array;
}

/** The GGUF name tried where the host cannot list the folder (Workers' static assets). */
const GGUF_FILE = "model.gguf";


/**
 * Safetensors (an index or model.safetensors) first, then one .gguf, then the ONNX graph. With
 * `preferOnnx` (ENGINE=ort: onnxruntime-web runs only ONNX) the ONNX graph comes first.
 */
export async function locateCheckpoint(read: (path: string) => Promise<Uint8Array>, opts: LocateOptions, preferOnnx = false): Promise<Checkpoint> {
  if (opts.weightsFile) {
    if (!opts.weightsFile.endsWith(".gguf")) throw new FormatError(`${opts.weightsFile}: a model file must be a .gguf (or give the model's folder)`);
    return { format: "gguf", file: opts.weightsFile };
  }
  // Without a listing, a file is there if it reads; what was read is kept for the loader.
  let probed: { path: string; bytes: Uint8Array } | undefined;
  const has = async (path: string) => {
    if (opts.files && !path.includes("/")) return opts.files.includes(path); // the listing is of the top folder only
    if (!opts.files && opts.listed && Object.hasOwn(opts.listed, path)) return true;
    const bytes = await read(path).catch(() => null);
    if (bytes) probed = { path, bytes };
    return bytes !== null;
  };
  const found = (format: CheckpointFormat, file: string): Checkpoint => ({ format, file, bytes: probed?.path === file ? probed.bytes : undefined });
  if (preferOnnx && (await has(opts.onnxFile))) return found("onnx", opts.onnxFile);
  if (await has(SAFETENSORS_INDEX)) return found("safetensors", SAFETENSORS_INDEX);
  if (await has(SAFETENSORS_FILE)) return found("safetensors", SAFETENSORS_FILE);
  const listedGgufs = opts.listed ? Object.keys(opts.listed).filter((f) => f.endsWith(".gguf") && !f.includes("/")) : [];
  const ggufs = opts.files ? opts.files.filter((f) => f.endsWith(".gguf")) : listedGgufs.length ? listedGgufs : (await has(GGUF_FILE)) ? [GGUF_FILE] : [];
  if (ggufs.length > 1) throw new FormatError(`the model folder holds ${ggufs.length} .gguf files (${ggufs.join(", ")}): give MODEL_DIR the one to serve`);
  if (ggufs.length === 1) return found("gguf", ggufs[0]);
  return { format: "onnx", file: opts.onnxFile };
}

/** The weight description of a safetensors or GGUF checkpoint, and a GGUF's own vocabulary. */
export async function readCheckpoint(read: (path: string) => Promise<Uint8Array>, checkpoint: Checkpoint, config: Record<string, unknown> | undefined):
  Promise<{ description: WeightDescription; vocab: GgufVocab | null }> {
  const kept = checkpoint.bytes, readFile = read;
  if (kept) read = (path) => (path === checkpoint.file ? Promise.resolve(kept) : readFile(path));
  if (checkpoint.format === "safetensors") {
    if (!config) throw new FormatError(`config.json: missing; a safetensors checkpoint needs its config.json`);
    return { description: await readSafetensorsFolder(read, config), vocab: null };
  }
  if (checkpoint.format === "gguf") {
    const gguf = parseGguf(await read(checkpoint.file), checkpoint.file);
    const description = ggufDescription(gguf, checkpoint.file), vocab = ggufVocab(gguf, checkpoint.file);
    if (vocab) checkGgufVocabulary(vocab, description);
    return { description, vocab };
  }
  throw new Error(`${checkpoint.file}: ONNX graphs are read by the engine's backends`);
}

/** llama.cpp's vocabulary has exactly one token per embedding row. */
export function checkGgufVocabulary(vocab: GgufVocab, d: WeightDescription): void {
  if (vocab.tokens.length !== d.arch.vocab) {
    throw new FormatError(`${d.files[0]}: "tokenizer.ggml.tokens" has ${vocab.tokens.length} tokens, the embedding "token_embd.weight" ${d.arch.vocab} rows`);
  }
}
