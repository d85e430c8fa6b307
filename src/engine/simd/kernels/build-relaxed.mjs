// relaxed.wat → relaxed.wasm with wabt (npm), which knows relaxed SIMD (Debian's clang 14 does not).
//   node src/engine/simd/kernels/build-relaxed.mjs [OUT]
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import wabtInit from "wabt";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, "../relaxed.wasm");
const wabt = await wabtInit();
const module = wabt.parseWat("relaxed.wat", readFileSync(join(here, "relaxed.wat"), "utf8"), { simd: true, relaxed_simd: true });
module.validate();
writeFileSync(out, module.toBinary({}).buffer);
