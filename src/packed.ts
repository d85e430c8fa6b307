// A model folder's packed kernel weights (`npm run pack -- DIR` writes PACK_FILE): the weights our
// kernels run, converted once from the folder's checkpoint (our int8 graph relaid out, safetensors
// or GGUF quantized), so a cold start — billed CPU on Workers — copies them instead. manifest.json is
// the root of trust: it lists the pack's sha256 and the sha256 of every file it was packed from, and
// the pack records the same source hashes. At load:
//   - no pack, or one manifest.json does not list: the checkpoint is converted (the latter logged);
//   - a pack whose sha256 differs from manifest.json's: an error, as for any file of the folder
//     (a partial upload or a replaced file; converting instead would hide a broken deploy);
//   - a stale pack (its sources' hashes are not manifest.json's any more, the folder now serves
//     another file, or it holds another version of the weights): ignored with a logged reason.
// The sources themselves are not read when the pack is used: manifest.json vouches for them (so a
// folder deployed with only the pack, for Workers' 25 MiB asset limit, still serves).
//
// A pack larger than npm run pack's --part-mib (8 MiB by default) is split into parts: PACK_FILE
// (the header and the first bytes), then PACK_FILE.1, PACK_FILE.2, … of the same size but the last,
// each listed in manifest.json. They are read one at a time and copied straight into the kernels'
// memory at the places the decoder reserved, so loading holds the heap plus one part, not the heap
// plus the whole file (on Workers both count against the isolate's 128 MB).
import { checkDigest, sha256Hex, type ManifestFiles } from "./digest.js";
import { readOnnx } from "./engine/simd/onnx-reader.js";
import { graphKernelWeights } from "./engine/backends.js";
import { describeQuantization, kernelWeights, KERNEL_WEIGHTS_VERSION, UnsupportedModel, type LlamaWeights, type WeightBits } from "./engine/simd/llama-weights.js";
import { FormatError } from "./formats/weights.js";
import { PACK_VERSION, PackError, packTree, readPackHeader, writePack } from "./engine/simd/pack.js";
import { PendingTensor, type Placeable } from "./engine/simd/heap.js";
import { locateCheckpoint, readCheckpoint, type CheckpointFormat, type LocateOptions } from "./formats/checkpoint.js";
import type { GgufVocab } from "./tokenizer/gguf-vocab.js";

export const PACK_FILE = "kernels.pack";
/** Parts npm run pack writes by default: small enough that loading holds little beside the heap, far below Workers' 25 MiB per asset. */
export const DEFAULT_PART_BYTES = 8 * 2 ** 20;

/** The file holding part `i` of a pack. */
export const packPart = (i: number): string => (i === 0 ? PACK_FILE : `${PACK_FILE}.${i}`);

/** A pack's bytes as the files npm run pack writes: parts of `partBytes` (a multiple of 64), the last shorter. */
export function packParts(bytes: Uint8Array, partBytes: number): { file: string; bytes: Uint8Array }[] {
  if (!Number.isSafeInteger(partBytes) || partBytes < 64 || partBytes % 64) throw new Error(`a pack part must be a positive multiple of 64 bytes, not ${partBytes}`);
  return Array.from({ length: Math.max(1, Math.ceil(bytes.byteLength / partBytes)) }, (_, i) => ({ file: packPart(i), bytes: bytes.subarray(i * partBytes, (i + 1) * partBytes) }));
}

/** What the model loader reports of the checkpoint (LoadedModel.weights), and a GGUF's own vocabulary. */
export interface PackedCheckpoint {
  format: CheckpointFormat;
  files: string[];
  architecture: string;
  quantization: string | null;
  vocab: GgufVocab | null;
}

type Read = (path: string) => Promise<Uint8Array>;

/**
 * What the loader would convert: the checkpoint's file, whether config.json is part of it, and the
 * bits its projections are quantized to (WEIGHT_BITS; a pack of our exporter's graph, whose int8
 * weights are kept as they are, records null and stands for any).
 */
export interface PackExpectation {
  file: string;
  config: boolean;
  weightBits: WeightBits;
}

/** Why a pack's header does not stand for the folder as manifest.json describes it now, or null. */
function staleReason(header: Record<string, unknown>, files: ManifestFiles, expected: PackExpectation): string | null {
  if (header.version !== PACK_VERSION) return `pack version ${JSON.stringify(header.version)}, this server reads ${PACK_VERSION}`;
  if (header.weights_version !== KERNEL_WEIGHTS_VERSION) return `weights version ${JSON.stringify(header.weights_version)}, this server's kernels take ${KERNEL_WEIGHTS_VERSION}`;
  const sources = (header.sources ?? {}) as Record<string, string>;
  const bits = header.weight_bits ?? null;
  if (bits !== null && bits !== expected.weightBits) return `packed with WEIGHT_BITS=${bits}, the server runs ${expected.weightBits}`;
  if (!sources[expected.file]) return `packed from ${Object.keys(sources).join(", ")}; the folder now serves ${expected.file}`;
  if (expected.config && !sources["config.json"]) return "packed without config.json, which the folder now has";
  for (const [path, sha] of Object.entries(sources)) {
    const now = files[path]?.sha256;
    if (now !== sha) return now ? `${path} has changed since (manifest.json: sha256 ${now.slice(0, 12)}…, packed from ${sha.slice(0, 12)}…)` : `${path} is not listed in manifest.json`;
  }
  return null;
}

/** A usable pack: the weights with their tensors' places to be reserved by the decoder, then `fill` copies the bytes in. */
export interface UsablePack {
  weights: Placeable<LlamaWeights>;
  checkpoint: PackedCheckpoint;
  /** Reads the pack's parts in order (each checked against manifest.json) into the decoder made from `weights`. */
  fill(): Promise<void>;
}

/**
 * The folder's pack, when it stands for what the loader would convert (`expected`) as manifest.json
 * lists it; null when there is none or it is stale (logged). A pack whose bytes are not manifest.json's is an error.
 */
export async function usablePack(read: Read, manifest: { files?: ManifestFiles }, expected: PackExpectation, log: (line: string) => void): Promise<UsablePack | null> {
  let first = await read(PACK_FILE).catch(() => null);
  if (!first) return null;
  const files = manifest.files ?? {};
  const ignored = (why: string) => {
    log(`tinylm-edge: ${PACK_FILE} ignored (${why}); converting ${expected.file} instead (npm run pack -- DIR writes it again)`);
    return null;
  };
  if (!files[PACK_FILE]?.sha256) return ignored("not listed in manifest.json");
  await checkDigest(PACK_FILE, first, manifest);
  const layout = readPackHeader(first, PACK_FILE);
  const stale = staleReason(layout.header, files, expected);
  if (stale) return ignored(stale);
  // The first part's length is every part's but the last's.
  const partBytes = first.byteLength, parts = Math.ceil(layout.end / partBytes);
  if (partBytes > layout.end) throw new PackError(`${PACK_FILE}: ${partBytes - layout.end} bytes past its last tensor (not a pack this server wrote: run npm run pack again)`);
  for (let i = 1; i < parts; i++) {
    if (!files[packPart(i)]?.sha256) throw new Error(`${packPart(i)}: part ${i + 1} of ${parts} of ${PACK_FILE}, not listed in manifest.json (run npm run pack again)`);
  }
  const pending: PendingTensor[] = [];
  const weights = packTree(layout, PACK_FILE, (t, i) => (pending[i] = new PendingTensor(t.bytes))) as Placeable<LlamaWeights>;
  const fill = async () => {
    for (let i = 0; i < parts; i++) {
      const file = packPart(i), start = i * partBytes, stop = Math.min(layout.end, start + partBytes);
      const bytes = i === 0 ? first! : await read(file);
      first = null; // only one part held at a time
      if (bytes.byteLength !== stop - start) throw new Error(`${file}: ${bytes.byteLength} bytes, where part ${i + 1} of ${parts} of ${PACK_FILE} has ${stop - start} (a partial upload?)`);
      if (i > 0) await checkDigest(file, bytes, manifest);
      layout.tensors.forEach((t, k) => {
        const from = Math.max(t.offset, start), to = Math.min(t.offset + t.bytes, stop);
        if (from < to) pending[k].write(from - t.offset, bytes.subarray(from - start, to - start));
      });
    }
    const short = layout.tensors.findIndex((t, k) => pending[k].written !== t.bytes);
    if (short >= 0) throw new Error(`${PACK_FILE}: tensor ${layout.tensors[short].name} was not read whole`);
  };
  return { weights, checkpoint: layout.header.checkpoint as PackedCheckpoint, fill };
}

/**
 * The pack of a folder's checkpoint, converted exactly as the model loader converts it, and the
 * files it stands for with their size and sha256 (for manifest.json). A checkpoint our kernels
 * cannot run (an ONNX graph only onnxruntime-web runs) has nothing to pack: an error saying why.
 * `manifest` is the folder's: a source whose bytes are not what it lists is refused.
 */
export async function buildPack(read: Read, opts: LocateOptions & { weightBits?: WeightBits }, manifest: { files?: ManifestFiles }): Promise<{ bytes: Uint8Array; sources: ManifestFiles }> {
  const checkpoint = await locateCheckpoint(read, opts);
  const configBytes = await read("config.json").catch(() => null);
  const config = configBytes ? (JSON.parse(new TextDecoder().decode(configBytes)) as Record<string, unknown>) : undefined;
  let weights: LlamaWeights, packed: PackedCheckpoint, sourceFiles: string[], weightBits: WeightBits | null = null;
  if (checkpoint.format === "onnx") {
    if (!config) throw new Error("config.json: missing; an ONNX graph needs it");
    let quantization: string | null = null;
    try {
      // As createBackend converts it: our exporter's graph as it is, a standard one through its lifted weights.
      const converted = graphKernelWeights(readOnnx(await read(checkpoint.file)), config, checkpoint.file, opts.weightBits ?? 8);
      ({ weights, quantization } = converted);
      if (converted.lifted) weightBits = opts.weightBits ?? 8;
    } catch (err) {
      if (err instanceof UnsupportedModel || err instanceof FormatError) throw new Error(`${checkpoint.file}: the kernels cannot run it (${err.message}), so there is nothing to pack: onnxruntime-web serves it as it is`);
      throw new Error(`${checkpoint.file}: ${(err as Error).message}`);
    }
    packed = { format: "onnx", files: [checkpoint.file], architecture: String(config.model_type), quantization, vocab: null };
    sourceFiles = [checkpoint.file, "config.json"];
  } else {
    const { description, vocab } = await readCheckpoint(read, checkpoint, config);
    weightBits = opts.weightBits ?? 8;
    weights = kernelWeights(description, weightBits);
    packed = { format: description.format, files: description.files, architecture: description.arch.modelType, quantization: describeQuantization(description, weights), vocab };
    sourceFiles = checkpoint.format === "gguf" ? [checkpoint.file] : [...new Set([checkpoint.file, ...description.files, "config.json"])];
  }
  const sources: ManifestFiles = {};
  for (const path of sourceFiles) {
    const bytes = await read(path);
    await checkDigest(path, bytes, manifest); // packing a file the folder's manifest says is something else would bless it
    sources[path] = { bytes: bytes.byteLength, sha256: await sha256Hex(bytes) };
  }
  const hashes = Object.fromEntries(Object.entries(sources).map(([path, s]) => [path, s.sha256]));
  return { bytes: writePack(weights, { weights_version: KERNEL_WEIGHTS_VERSION, weight_bits: weightBits, sources: hashes, checkpoint: packed }), sources };
}
