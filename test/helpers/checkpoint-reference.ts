// The PyTorch reference a checkpoint fixture carries (scripts/tinylm/checkpoints.py: reference.json,
// reference.f32) and what the parity tests measure against it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Decoder } from "../../src/engine/decoder.js";

export interface Reference {
  prompts: number[][];
  greedy: number[][];
  /** [rows, vocab]: the logits at each prompt's last position, then at each greedy token. */
  logits: Float32Array;
}

export function reference(dir: string): Reference {
  const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
  const raw = readFileSync(join(dir, "reference.f32"));
  return { ...ref, logits: new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4) };
}

export function logSoftmax(l: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of l) max = Math.max(max, x);
  let z = 0;
  for (const x of l) z += Math.exp(x - max);
  return Float64Array.from(l, (x) => x - max - Math.log(z));
}

/** KL(p ‖ q) of two logit rows. */
export function kl(p: Float32Array, q: Float32Array): number {
  const a = logSoftmax(p), b = logSoftmax(q);
  let sum = 0;
  for (let k = 0; k < a.length; k++) sum += Math.exp(a[k]) * (a[k] - b[k]);
  return sum;
}

/**
 * A logit gap between the reference's first and second choice beyond int8's error on these models
 * (their logits differ from fp32's by ~0.1): where the gap is smaller, fp32 itself nearly ties and
 * the int8 model may pick the other token.
 */
export const DECISIVE = 0.5;

export function top2(l: Float32Array): { best: number; gap: number } {
  let best = 0, a = -Infinity, b = -Infinity;
  l.forEach((x, i) => {
    if (x > a) [b, a, best] = [a, x, i];
    else if (x > b) b = x;
  });
  return { best, gap: a - b };
}

/** The decoder's logits at each reference row, fed the reference's tokens (each prompt, then its greedy tokens one by one). */
export async function referenceRows(dec: Decoder, ref: Reference): Promise<Float32Array[]> {
  const V = dec.shape.vocabSize, rows: Float32Array[] = [];
  for (const [i, prompt] of ref.prompts.entries()) {
    const cache = dec.newCache();
    let feed = prompt;
    for (const next of ref.greedy[i]) {
      const [{ logits }] = await dec.step([{ cache, tokens: feed }]);
      rows.push(logits.slice(logits.length - V));
      feed = [next];
    }
    cache.release();
  }
  return rows;
}
