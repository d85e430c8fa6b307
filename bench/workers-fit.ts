// Which shapes fit a Workers isolate, at which quantization: the WASM heap of our kernels with the
// weights loaded, then after the largest load Workers' settings admit — MAX_BATCH sequences at once,
// each filled to MAX_CONTEXT positions (prompt + generated) — for weights at 8 / 4 bits and the KV
// cache f32 / int8. Random weights (bench/models.ts's shapes, F16 GGUF as a hub checkpoint would be
// bf16): memory depends on shape and quantization only. One process per configuration, since a
// WebAssembly memory never shrinks.
//   tsx bench/workers-fit.ts [--shapes smollm2-135m,qwen2.5-0.5b] [--context 2048] [--batch 4] [--bits 8,4] [--kv f32,int8] [--vocab N]
// --vocab N: the shape with its vocabulary compressed to N tokens (what `npm run compress --keep N` makes).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseFlags, runMain } from "../scripts/tokenizer/cli.js";
import { SimdDecoder, type KvCacheKind } from "../src/engine/simd/decoder.js";
import { kernelWeights, type WeightBits } from "../src/engine/simd/llama-weights.js";
import { ggufDescription, parseGguf } from "../src/formats/gguf.js";
import { benchModel, SHAPES } from "./models.js";

const USAGE = `
usage: tsx bench/workers-fit.ts [--shapes A,B] [--context N] [--batch N] [--bits 8,4] [--kv f32,int8] [--vocab N]
The WASM heap with the weights loaded and after MAX_BATCH sequences filled to MAX_CONTEXT, per shape,
weight bits and KV cache. Defaults: smollm2-135m,qwen2.5-0.5b; Workers' 2048 and 4; 8,4; f32,int8.
--vocab N: the shapes with their vocabulary compressed to N tokens (npm run compress --keep N).
`;

const MiB = 2 ** 20;

/** One configuration, in this process: heap after load, after the fill. */
async function measure(file: string, bits: WeightBits, kv: KvCacheKind, context: number, batch: number) {
  const description = ggufDescription(parseGguf(new Uint8Array(readFileSync(file)), file), file);
  description.arch = { ...description.arch, maxLength: Math.min(context, description.arch.maxLength) };
  const kernels = await WebAssembly.compile(readFileSync(join(import.meta.dirname, "../src/engine/simd/kernels.wasm")));
  const dec = await SimdDecoder.create(kernels, kernelWeights(description, bits), null, {}, kv);
  const loaded = dec.heapBytes;
  const n = dec.shape.maxLength, caches = Array.from({ length: batch }, () => dec.newCache());
  // Each sequence's cache filled to the context, 64 positions a step (no logits: memory, not speed).
  for (let at = 0; at < n; at += 64) {
    const len = Math.min(64, n - at);
    await dec.step(caches.map((cache, b) => ({ cache, tokens: Array.from({ length: len }, (_, i) => (at + i + 7 * b) % 1000), logits: "none" as const })));
  }
  return { loaded_mib: loaded / MiB, filled_mib: dec.heapBytes / MiB, context: n, batch };
}

await runMain(async () => {
  if (process.argv[2] === "one") {
    const [file, bits, kv, context, batch] = process.argv.slice(3);
    console.log(JSON.stringify(await measure(file, Number(bits) as WeightBits, kv as KvCacheKind, Number(context), Number(batch))));
    return;
  }
  const { flags } = parseFlags(process.argv.slice(2), USAGE);
  const names = (flags.get("shapes") ?? "smollm2-135m,qwen2.5-0.5b").split(",");
  const context = Number(flags.get("context") ?? 2048), batch = Number(flags.get("batch") ?? 4);
  const bitsList = (flags.get("bits") ?? "8,4").split(",").map(Number), kvList = (flags.get("kv") ?? "f32,int8").split(",");
  const vocab = flags.has("vocab") ? Number(flags.get("vocab")) : null;
  const rows: string[] = [];
  for (const name of names) {
    const known = SHAPES.find((s) => s.name === name);
    if (!known) throw new Error(`--shapes: unknown shape "${name}" (${SHAPES.map((s) => s.name).join(", ")})`);
    const shape = vocab ? { ...known, name: `${known.name}-vocab${vocab}`, vocab } : known;
    const { file } = benchModel(shape);
    for (const bits of bitsList) {
      for (const kv of kvList) {
        const out = execFileSync(process.execPath, ["--import", "tsx", import.meta.filename, "one", file, String(bits), kv, String(context), String(batch)], { encoding: "utf8", maxBuffer: 1 << 20 });
        const r = JSON.parse(out.trim().split("\n").at(-1)!);
        rows.push(`| ${shape.name} | ${bits} | ${kv} | ${r.loaded_mib.toFixed(0)} | ${r.filled_mib.toFixed(0)} (${r.batch} × ${r.context}) | ${r.filled_mib <= 110 ? "yes" : "no"} |`);
        console.error(rows.at(-1));
      }
    }
  }
  console.log(["| shape | weight bits | KV cache | WASM heap loaded (MiB) | after the fill (MiB) | ≤ 110 MiB |", "|---|---|---|---:|---:|---|", ...rows].join("\n"));
});
