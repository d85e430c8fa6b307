// Mean KL divergence of a decoder's logits from a folder's PyTorch reference logits.
import type { ModelFolder } from "../../scripts/parity.js";
import type { Decoder } from "../../src/engine/decoder.js";

function logSoftmax(l: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of l) max = Math.max(max, x);
  let z = 0;
  for (const x of l) z += Math.exp(x - max);
  return Float64Array.from(l, (x) => x - max - Math.log(z));
}

/** KL(softmax(a) ‖ softmax(b)) of two rows of logits. */
export function klBetween(a: Float32Array, b: Float32Array): number {
  const p = logSoftmax(a), q = logSoftmax(b);
  let kl = 0;
  for (let i = 0; i < p.length; i++) kl += Math.exp(p[i]) * (p[i] - q[i]);
  return kl;
}

/** Mean KL(reference ‖ model) over the reference rows of the parity cases (prefill and decode steps). */
export async function meanKl(dec: Decoder, folder: ModelFolder): Promise<number> {
  const V = folder.shape.vocabSize;
  let total = 0, rows = 0;
  for (const c of folder.parity.cases) {
    if (c.kind !== "single") continue;
    const cache = dec.newCache();
    for (const s of c.steps) {
      const [{ logits }] = await dec.step([{ cache, tokens: s.input }]);
      total += klBetween(folder.referenceRow(s.row), logits.subarray(logits.length - V));
      rows++;
    }
  }
  return total / rows;
}
