// npm run pack -- DIR [--onnx-file onnx/model_quantized.onnx] [--weight-bits 8|7|4]
// Writes DIR/kernels.pack: the folder's checkpoint converted once into the weights our kernels run
// (src/packed.ts), and lists it, with the files it was packed from, in DIR/manifest.json.
import { readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { sha256Hex } from "../src/digest.js";
import { PACK_FILE, buildPack } from "../src/packed.js";
import { parseFlags, runMain } from "./tokenizer/cli.js";

const USAGE = `
usage: npm run pack -- DIR [--onnx-file FILE] [--weight-bits 8|7|4]
Convert the model folder's checkpoint (our exporter's int8 graph, a standard ONNX graph whose weights
the kernels lift, safetensors or GGUF) once into the weights our WASM kernels run, as
DIR/${PACK_FILE}, and record its sha256 and its sources' in
DIR/manifest.json (created when missing). The server then loads the pack instead of converting, as
long as manifest.json lists the same sources; run it again after changing them.
  DIR               the model folder, or a .gguf file in it
  --onnx-file FILE  the graph the folder serves (default: onnx/model_quantized.onnx, as ONNX_FILE)
  --weight-bits N   a safetensors / GGUF checkpoint's or a lifted graph's projections at 8, 7 or 4 bits, as the server's WEIGHT_BITS (default 8)
`;

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
  writeWhole(join(dir, PACK_FILE), bytes);
  manifest.files = { ...manifest.files, ...sources, [PACK_FILE]: { bytes: bytes.byteLength, sha256: await sha256Hex(bytes) } };
  writeWhole(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`${join(dir, PACK_FILE)}: ${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB from ${Object.keys(sources).join(", ")} in ${Math.round(performance.now() - t)} ms; listed in ${manifestPath}`);
});
