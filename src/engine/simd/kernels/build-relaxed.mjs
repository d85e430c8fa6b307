// relaxed.wat → relaxed.wasm with wabt (npm), which knows relaxed SIMD (Debian's clang 14 does not).
//   node src/engine/simd/kernels/build-relaxed.mjs [OUT]             → ../relaxed.wasm
//   node src/engine/simd/kernels/build-relaxed.mjs --threads [OUT]   → ../relaxed-threads.wasm: the same
//     code on a shared memory, for kernels-threads.wasm (build.sh --threads)
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import wabtInit from "wabt";

const here = dirname(fileURLToPath(import.meta.url));
const threads = process.argv[2] === "--threads";
const out = process.argv[threads ? 3 : 2] ?? join(here, threads ? "../relaxed-threads.wasm" : "../relaxed.wasm");
const source = readFileSync(join(here, "relaxed.wat"), "utf8");
const wabt = await wabtInit();
const features = { simd: true, relaxed_simd: true };
wabt.parseWat("relaxed.wat", source, features).validate();
let module = wabt.parseWat("relaxed.wat", source, features);
if (threads) {
  // The same code on a shared memory of build.sh --threads's maximum (4 GiB). wabt's validator
  // rejects any shared memory import, so the text above is what it validates.
  const memory = '(import "env" "memory" (memory 1))';
  if (!source.includes(memory)) throw new Error(`relaxed.wat no longer imports ${memory}`);
  module = wabt.parseWat("relaxed.wat", source.replace(memory, '(import "env" "memory" (memory 1 65536 shared))'), { ...features, threads: true });
}
writeFileSync(out, module.toBinary({}).buffer);
