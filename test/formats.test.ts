// Checkpoints as they come from a hub, on our kernels: each architecture (llama with Llama 3's rope
// scaling, head_dim ≠ hidden/heads and an untied head; mistral's sliding window; qwen2's q/k/v biases;
// qwen3's q/k RMSNorm) as a safetensors folder and as a GGUF file with its own vocabulary, against
// the PyTorch reference on the same stored weights (scripts/tinylm/checkpoints.py).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { greedy } from "../scripts/parity.js";
import { createKernelBackend } from "../src/engine/backends.js";
import type { Decoder } from "../src/engine/decoder.js";
import { locateCheckpoint, readCheckpoint } from "../src/formats/checkpoint.js";
import { loadModel } from "../src/model.js";
import { nodeOrt } from "../src/node-runtime.js";
import { KERNELS_WASM, RELAXED_WASM } from "./helpers/fixture.js";
import { CHECKPOINT_ARCHS, checkpointFixtures } from "./helpers/interop-fixtures.js";

const ROOT = checkpointFixtures();
const folderReader = (dir: string) => async (path: string) => {
  try {
    return new Uint8Array(readFileSync(join(dir, path)));
  } catch {
    throw new Error(`${path}: not found in the model folder`);
  }
};
const kernels = () => WebAssembly.compile(readFileSync(KERNELS_WASM));
const relaxed = () => WebAssembly.compile(readFileSync(RELAXED_WASM));
const base = { ort: nodeOrt(1), kernels, engine: { maxBatch: 4, maxQueue: 8, prefixCache: false }, onnxFile: "onnx/model_quantized.onnx", log: () => {} };

interface Reference {
  prompts: number[][];
  greedy: number[][];
  logits: Float32Array;
}

function reference(dir: string): Reference {
  const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
  const raw = readFileSync(join(dir, "reference.f32"));
  return { ...ref, logits: new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4) };
}

function logSoftmax(l: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of l) max = Math.max(max, x);
  let z = 0;
  for (const x of l) z += Math.exp(x - max);
  return Float64Array.from(l, (x) => x - max - Math.log(z));
}

/**
 * A logit gap between the reference's first and second choice beyond int8's error on these models
 * (their logits differ from fp32's by ~0.1): where the gap is smaller, fp32 itself nearly ties and
 * the int8 model may pick the other token.
 */
const DECISIVE = 0.5;

function top2(l: Float32Array): { best: number; gap: number } {
  let best = 0, a = -Infinity, b = -Infinity;
  l.forEach((x, i) => {
    if (x > a) [b, a, best] = [a, x, i];
    else if (x > b) b = x;
  });
  return { best, gap: a - b };
}

/**
 * Fed the reference's tokens, row by row: mean KL(reference ‖ ours), our argmax where the
 * reference's choice is decisive, and how many greedy steps each prompt has before its first near-tie.
 */
async function compare(dec: Decoder, ref: Reference) {
  const V = dec.shape.vocabSize;
  let kl = 0, row = 0, decisive = 0, agree = 0;
  const decisivePrefix: number[] = [];
  for (const [i, prompt] of ref.prompts.entries()) {
    const cache = dec.newCache();
    let feed = prompt, prefix = -1;
    for (const [j, next] of ref.greedy[i].entries()) {
      const [{ logits }] = await dec.step([{ cache, tokens: feed }]);
      const refRow = ref.logits.subarray(row * V, (row + 1) * V), ours = logits.subarray(logits.length - V);
      const p = logSoftmax(refRow), q = logSoftmax(ours);
      for (let k = 0; k < V; k++) kl += Math.exp(p[k]) * (p[k] - q[k]);
      const { best, gap } = top2(refRow);
      expect(best).toBe(next);
      if (gap >= DECISIVE) {
        decisive++;
        if (top2(ours).best === best) agree++;
      } else if (prefix < 0) prefix = j;
      row++;
      feed = [next];
    }
    decisivePrefix.push(prefix < 0 ? ref.greedy[i].length : prefix);
  }
  return { kl: kl / row, decisive, agree, decisivePrefix };
}

const cases = CHECKPOINT_ARCHS.flatMap((arch) => [
  { arch, format: "safetensors", dir: join(ROOT, `${arch}-safetensors`) },
  { arch, format: "gguf", dir: join(ROOT, `${arch}-gguf`) },
]);

describe.each(cases)("$arch as $format", ({ arch, format, dir }) => {
  it("loads on our kernels (no fallback) and serves what the folder is", async () => {
    const m = await loadModel(folderReader(dir), { ...base, backend: "auto", files: ["model.gguf", "model.safetensors", "model.safetensors.index.json"].filter((f) => { try { readFileSync(join(dir, f)); return true; } catch { return false; } }) });
    expect(m.backend).toMatchObject({ name: "simd", reason: null });
    expect(m.weights).toMatchObject({ format, architecture: arch });
    expect(m.weights.quantization).toMatch(/^int8/);
    expect(m.onnxFile).toBeNull();
  });

  it.each(["simd128", "relaxed-simd"] as const)("%s: greedy continuation equals the PyTorch reference's; mean KL reported", async (variant) => {
    const read = folderReader(dir);
    const checkpoint = await locateCheckpoint(read, { onnxFile: "none" });
    const config = format === "safetensors" ? JSON.parse(new TextDecoder().decode(await read("config.json"))) : undefined;
    const { description } = await readCheckpoint(read, checkpoint, config);
    const dec = await createKernelBackend(description, { ...base, relaxed: variant === "relaxed-simd" ? relaxed : undefined });
    expect(dec.variant).toBe(variant);
    const ref = reference(dir);
    const { kl, decisive, agree, decisivePrefix } = await compare(dec, ref);
    const dtypes = [...new Set([...description.tensors.values()].filter((t) => t.shape.length === 2).map((t) => t.dtype))];
    console.log(`${arch} ${format} (${dtypes}) on ${variant}, int8 vs PyTorch fp32: mean KL ${kl.toExponential(2)}; argmax agrees on ${agree}/${decisive} decisive rows (of ${ref.greedy.flat().length})`);
    expect(agree).toBe(decisive);
    expect(decisive).toBeGreaterThanOrEqual(4);
    expect(kl).toBeLessThan(0.02);
    // Our own greedy decode (cache, rows, prefill) follows the reference up to its first near-tie.
    for (const [i, prompt] of ref.prompts.entries()) {
      const n = decisivePrefix[i];
      expect((await greedy(dec, prompt, ref.greedy[i].length)).slice(0, n)).toEqual(ref.greedy[i].slice(0, n));
    }
  });
});
