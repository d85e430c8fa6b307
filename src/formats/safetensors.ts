// Hugging Face's safetensors: an 8-byte little-endian header length N, N bytes of JSON
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}), then the data, the
// offsets relative to its start. One file (model.safetensors) or shards named by
// model.safetensors.index.json's weight_map. Every size and offset is checked before a byte is read.
import { architectureFromConfig, FormatError, validateDescription, type DType, type TensorData, type WeightDescription } from "./weights.js";

export const SAFETENSORS_FILE = "model.safetensors";
export const SAFETENSORS_INDEX = "model.safetensors.index.json";

const DTYPES: Record<string, DType> = { F32: "F32", F16: "F16", BF16: "BF16" };
const SIZES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2, Q8_0: 0, Q4_0: 0 };

/** The tensors of one safetensors file, as views into `bytes`. */
export function parseSafetensors(bytes: Uint8Array, file: string): Map<string, TensorData> {
  if (bytes.byteLength < 8) throw new FormatError(`${file}: truncated (${bytes.byteLength} bytes, shorter than the 8-byte header length)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > bytes.byteLength - 8) throw new FormatError(`${file}: header length ${n} runs past the end of the file (${bytes.byteLength} bytes): truncated or not safetensors`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (err) {
    throw new FormatError(`${file}: header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw new FormatError(`${file}: header is not a JSON object`);
  const dataStart = 8 + n, dataBytes = bytes.byteLength - dataStart;
  const tensors = new Map<string, TensorData>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const field = (what: string) => `${file}: tensor "${name}" ${what}`;
    const dtype = DTYPES[String(e?.dtype)];
    if (!dtype) throw new FormatError(field(`has dtype ${JSON.stringify(e?.dtype)}; supported: F32, F16, BF16`));
    const shape = e.shape, offsets = e.data_offsets;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new FormatError(field(`"shape" ${JSON.stringify(shape)} is not a list of sizes`));
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new FormatError(field(`"data_offsets" ${JSON.stringify(offsets)} is not [begin, end]`));
    }
    const [begin, end] = offsets as number[];
    if (begin > end || end > dataBytes) throw new FormatError(field(`"data_offsets" [${begin}, ${end}] run past the data (${dataBytes} bytes): truncated or a header that lies`));
    const expected = (shape as number[]).reduce((a, b) => a * b, 1) * SIZES[dtype];
    if (end - begin !== expected) throw new FormatError(field(`holds ${end - begin} bytes, ${dtype} [${shape}] is ${expected}`));
    tensors.set(name, { dtype, shape: shape as number[], bytes: bytes.subarray(dataStart + begin, dataStart + end), file });
  }
  return tensors;
}

/** The files of a sharded checkpoint, from the index's weight_map (tensor → file). */
function shardFiles(index: unknown, file = SAFETENSORS_INDEX): string[] {
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null) throw new FormatError(`${file}: no "weight_map" object`);
  const files = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const f of files) {
    if (typeof f !== "string" || !/^[\w.-]+\.safetensors$/.test(f)) throw new FormatError(`${file}: "weight_map" names ${JSON.stringify(f)}, not a .safetensors file in the folder`);
  }
  return files as string[];
}

/**
 * A Hugging Face folder's weights: config.json's architecture and the tensors of model.safetensors
 * or of the shards its index names, validated (weights.ts).
 */
export async function readSafetensorsFolder(read: (path: string) => Promise<Uint8Array>, config: Record<string, unknown>): Promise<WeightDescription> {
  const arch = architectureFromConfig(config);
  const indexBytes = await read(SAFETENSORS_INDEX).catch(() => null);
  let files = [SAFETENSORS_FILE];
  if (indexBytes) {
    let index: unknown;
    try {
      index = JSON.parse(new TextDecoder().decode(indexBytes));
    } catch (err) {
      throw new FormatError(`${SAFETENSORS_INDEX}: not valid JSON (${(err as Error).message})`);
    }
    files = shardFiles(index);
  }
  const tensors = new Map<string, TensorData>();
  for (const file of files) {
    for (const [name, t] of parseSafetensors(await read(file), file)) {
      if (tensors.has(name)) throw new FormatError(`${file}: tensor "${name}" is also in ${tensors.get(name)!.file}`);
      tensors.set(name, t);
    }
  }
  return validateDescription({ format: "safetensors", files, arch, tensors });
}

/**
 * A safetensors file as its pieces, to be written in order: the 8-byte header length, the JSON
 * header (padded with spaces to a multiple of 8, as Hugging Face's writer does, so every tensor's
 * data stays 8-aligned when the sizes are), then each tensor's bytes in the order given.
 */
export function encodeSafetensors(tensors: Map<string, Pick<TensorData, "dtype" | "shape" | "bytes">>, metadata: Record<string, string> = { format: "pt" }): Uint8Array[] {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1) * SIZES[t.dtype];
    if (!DTYPES[t.dtype] || t.bytes.byteLength !== expected) throw new FormatError(`tensor "${name}": ${t.bytes.byteLength} bytes are not ${t.dtype} [${t.shape}]`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.byteLength] };
    offset += t.bytes.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat(-new TextEncoder().encode(json).byteLength & 7);
  const text = new TextEncoder().encode(json), length = new Uint8Array(8);
  new DataView(length.buffer).setBigUint64(0, BigInt(text.byteLength), true);
  return [length, text, ...[...tensors.values()].map((t) => t.bytes)];
}
