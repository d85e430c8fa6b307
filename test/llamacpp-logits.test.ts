// Our kernels against llama.cpp on the same GGUF files: the logits scripts/llamacpp/record-logits.ts
// recorded once from a llama.cpp build (test/fixtures/llamacpp-logits.json; the test runs only
// where that file exists, and per model only while the fixture is byte for byte the one recorded).
// Per position, llama.cpp kept its top logits and the log-sum-exp of all: compared are the argmax
// where llama.cpp's choice is decisive, and KL(llama.cpp ‖ ours) over llama.cpp's top tokens (both
// distributions renormalised on that set); for the checkpoint fixtures, the PyTorch reference
// (scripts/tinylm/checkpoints.py) against llama.cpp the same way, which checks the fixtures' GGUF
// layout itself.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { benchModel, SHAPES } from "../bench/models.js";
import type { RecordedModel, RecordedRow } from "../scripts/llamacpp/record-logits.js";
import { SimdDecoder } from "../src/engine/simd/decoder.js";
import { describeQuantization, kernelWeights } from "../src/engine/simd/llama-weights.js";
import { compileRelaxed } from "../src/engine/simd/relaxed.js";
import { ggufDescription, parseGguf } from "../src/formats/gguf.js";
import { KERNELS_WASM, RELAXED_WASM } from "./helpers/fixture.js";
import { checkpointFixtures } from "./helpers/interop-fixtures.js";

const RECORDED = join(import.meta.dirname, "fixtures/llamacpp-logits.json");
const recorded: { llama_cpp_commit: string; models: RecordedModel[] } | null = existsSync(RECORDED) ? JSON.parse(readFileSync(RECORDED, "utf8")) : null;

/** Where each recorded file is made: the checkpoint fixtures, or the bench's GGUF of the shipped model. */
function locate(file: string): string {
  if (file.startsWith("test-fixtures/checkpoints/")) return join(checkpointFixtures(), file.slice("test-fixtures/checkpoints/".length));
  if (file.startsWith("bench-models/")) return benchModel(SHAPES.find((s) => file.startsWith(`bench-models/${s.name}/`))!).file;
  throw new Error(`${file}: not a file this test knows how to make`);
}

/** llama.cpp's choice is decisive where its top two logits are this far apart (int8's error is ~0.1). */
const DECISIVE = 0.5;

/** KL(llama.cpp ‖ other) over llama.cpp's top tokens, both renormalised there; and the top tokens' share of llama.cpp's whole distribution. */
function topKl(row: RecordedRow, other: Float32Array): { kl: number; mass: number } {
  const soft = (xs: number[]) => {
    const m = Math.max(...xs), z = xs.reduce((s, x) => s + Math.exp(x - m), 0);
    return xs.map((x) => x - m - Math.log(z));
  };
  const p = soft(row.top.map(([, l]) => l)), q = soft(row.top.map(([id]) => other[id]));
  return { kl: p.reduce((s, lp, i) => s + Math.exp(lp) * (lp - q[i]), 0), mass: row.top.reduce((s, [, l]) => s + Math.exp(l - row.logsumexp), 0) };
}

function argmax(l: Float32Array): number {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
  return best;
}

/** Mean top-set KL and decisive-argmax agreement of `logitsAt(sequence, row)` against llama.cpp's rows. */
function against(m: RecordedModel, logitsAt: (s: number, r: number) => Float32Array) {
  let kl = 0, mass = 0, rows = 0, decisive = 0, agree = 0;
  m.sequences.forEach((seq, s) => seq.rows.forEach((row, r) => {
    const ours = logitsAt(s, r), t = topKl(row, ours);
    kl += t.kl;
    mass += t.mass;
    rows++;
    if (row.top[0][1] - row.top[1][1] >= DECISIVE) {
      decisive++;
      if (argmax(ours) === row.top[0][0]) agree++;
    }
  }));
  return { kl: kl / rows, mass: mass / rows, rows, decisive, agree };
}

describe.skipIf(!recorded)(`our kernels against llama.cpp's logits (${RECORDED.split("/").slice(-2).join("/")})`, () => {
  for (const m of recorded?.models ?? []) {
    const file = locate(m.file);
    const same = createHash("sha256").update(readFileSync(file)).digest("hex") === m.sha256;
    if (!same) console.log(`${m.file}: rebuilt with other bytes than llama.cpp was run on (another torch?); not compared`);
    it.runIf(same)(`${m.file}: argmax on every decisive position, KL on llama.cpp's top ${m.sequences[0].rows[0].top.length} tokens`, async () => {
      const description = ggufDescription(parseGguf(new Uint8Array(readFileSync(file)), file), file);
      const weights = kernelWeights(description); // WEIGHT_BITS=8, the default: Q8_0 / Q4_0 blocks kept, F-types to 8-bit rows
      const dec = await SimdDecoder.create(await WebAssembly.compile(readFileSync(KERNELS_WASM)), weights, await compileRelaxed(async () => readFileSync(RELAXED_WASM)));
      const V = dec.shape.vocabSize;
      expect(V).toBe(m.vocab);
      const ours: Float32Array[] = [];
      for (const seq of m.sequences) {
        const [{ logits }] = await dec.step([{ cache: dec.newCache(), tokens: seq.tokens, logits: "all" }]);
        ours.push(logits);
      }
      const kernels = against(m, (s, r) => ours[s].subarray((m.sequences[s].from + r) * V, (m.sequences[s].from + r + 1) * V));
      console.log(`${m.file} (${description.arch.modelType}; ours: ${describeQuantization(description, weights)}) vs llama.cpp: top-set KL ${kernels.kl.toExponential(2)} (the set holds ${(100 * kernels.mass).toFixed(0)}% of llama.cpp's probability); argmax ${kernels.agree}/${kernels.decisive} decisive of ${kernels.rows}`);
      expect(kernels.decisive).toBeGreaterThanOrEqual(4);
      expect(kernels.agree).toBe(kernels.decisive);
      expect(kernels.kl).toBeLessThan(0.02);
      const refFile = join(file, "../reference.f32");
      if (existsSync(refFile)) {
        const raw = readFileSync(refFile), ref = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
        const rowsPer = m.sequences[0].rows.length;
        const torch = against(m, (s, r) => ref.subarray((s * rowsPer + r) * V, (s * rowsPer + r + 1) * V));
        console.log(`${m.file}, PyTorch reference (the stored weights in fp32) vs llama.cpp: top-set KL ${torch.kl.toExponential(2)}; argmax ${torch.agree}/${torch.decisive}`);
        expect(torch.agree).toBe(torch.decisive);
        expect(torch.kl).toBeLessThan(5e-3); // llama.cpp rounds activations to 8 bits for its Q8_0 and Q4_0 dot products
      }
    });
  }
});
