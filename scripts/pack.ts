// npm run pack -- DIR [--onnx-file onnx/model_quantized.onnx] [--weight-bits 8|7|4] [--part-mib 8]
// Writes DIR/kernels.pack (and kernels.pack.1, … past --part-mib): the folder's checkpoint converted
// once into the weights our kernels run (src/packed.ts), and lists it, with the files it was packed
// from, in DIR/manifest.json.
import { readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { sha256Hex } from "../src/digest.js";
import { readPackHeader } from "../src/engine/simd/pack.js";
import { DEFAULT_PART_BYTES, PACK_FILE, buildPack, packParts } from "../src/packed.js";
import { parseFlags, runMain } from "./tokenizer/cli.js";

const USAGE = `
usage: npm run pack -- DIR [--onnx-file FILE] [--weight-bits 8|7|4] [--part-mib N]
Convert the model folder's checkpoint (our exporter's int8 graph, a standard ONNX graph whose weights
the kernels lift, safetensors or GGUF) once into the weights our WASM kernels run, as
DIR/${PACK_FILE}, and record its sha256 and its sources' in
DIR/manifest.json (created when missing). The server then loads the pack instead of converting, as
long as manifest.json lists the same sources; run it again after changing them.
  DIR               the model folder, or a .gguf file in it
  --onnx-file FILE  the graph the folder serves (default: onnx/model_quantized.onnx, as ONNX_FILE)
  --weight-bits N   a safetensors / GGUF checkpoint's or a lifted graph's projections at 8, 7 or 4 bits, as the server's WEIGHT_BITS (default 8)
  --part-mib N      a pack larger than N MiB is written in parts of N MiB (${PACK_FILE}.1, …; default ${DEFAULT_PART_BYTES / 2 ** 20}):
                    the server reads one part at a time into the kernels' memory, and each stays under Workers' 25 MiB per asset
`;

/** Earlier parts of the pack in the folder: a pack with fewer parts leaves none behind. */
const PART = new RegExp(`^${PACK_FILE.replace(".", "\\.")}\\.[0-9]+$`);

/** Writes through a temporary file and a rename, so a reader never sees half a file. */
function writeWhole(path: string, bytes: Uint8Array | string): void {
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
}

runMain(async () => {
  const { flags, positional } = parseFlags(process.argv.slice(2), USAGE);
  if (!positional[0]) throw new Error(USAGE.trim());
  const weightBits = Number(flags.get("weight-bits") ?? 8);
  if (weightBits !== 8 && weightBits !== 7 && weightBits !== 4) throw new Error(`--weight-bits must be 8, 7 or 4, got "${flags.get("weight-bits")}"`);
  const partMib = Number(flags.get("part-mib") ?? DEFAULT_PART_BYTES / 2 ** 20);
  if (!(partMib > 0)) throw new Error(`--part-mib must be a positive number of MiB, got "${flags.get("part-mib")}"`);
  const partBytes = Math.max(64, Math.floor((partMib * 2 ** 20) / 64) * 64);
  const isFile = statSync(positional[0]).isFile();
  const dir = isFile ? dirname(positional[0]) : positional[0];
  const read = async (path: string) => new Uint8Array(readFileSync(join(dir, path)));
  const manifestPath = join(dir, "manifest.json");
  const manifest = (() => {
    try {
      return JSON.parse(readFileSync(manifestPath, "utf8")) as { files?: Record<string, unknown> };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw new Error(`${manifestPath}: ${(err as Error).message}`);
    }
  })();
  const t = performance.now();
  const { bytes, sources } = await buildPack(read, {
    onnxFile: flags.get("onnx-file") ?? "onnx/model_quantized.onnx", weightsFile: isFile ? basename(positional[0]) : undefined, files: readdirSync(dir), weightBits,
  }, manifest as never);
  // The first part holds the whole header (a GGUF's vocabulary is in it): no part is smaller.
  const headerBytes = Math.ceil((12 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true)) / 64) * 64;
  const parts = packParts(bytes, Math.max(partBytes, headerBytes));
  readPackHeader(parts[0].bytes, PACK_FILE);
  const listed = Object.fromEntries(Object.entries(manifest.files ?? {}).filter(([path]) => !PART.test(path)));
  for (const file of readdirSync(dir)) if (PART.test(file)) rmSync(join(dir, file));
  for (const part of parts) {
    writeWhole(join(dir, part.file), part.bytes);
    listed[part.file] = { bytes: part.bytes.byteLength, sha256: await sha256Hex(part.bytes) };
  }
  manifest.files = { ...listed, ...sources };
  writeWhole(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  const inParts = parts.length > 1 ? ` in ${parts.length} parts (${PACK_FILE} … ${parts.at(-1)!.file})` : "";
  console.log(`${join(dir, PACK_FILE)}: ${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB${inParts} from ${Object.keys(sources).join(", ")} in ${Math.round(performance.now() - t)} ms; listed in ${manifestPath}`);
});
