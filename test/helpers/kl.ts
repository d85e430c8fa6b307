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

/** Mean KL(reference ‖ model) over the reference rows of the parity cases (prefill and decode steps). */
export async function meanKl(dec: Decoder, folder: ModelFolder): Promise<number> {
  const V = folder.shape.vocabSize;
  let total = 0, rows = 0;
  for (const c of folder.parity.cases) {
    if (c.kind !== "single") continue;
    const cache = dec.newCache();
    for (const s of c.steps) {
      const [{ logits }] = await dec.step([{ cache, tokens: s.input }]);
      const p = logSoftmax(folder.referenceRow(s.row)), q = logSoftmax(logits.subarray(logits.length - V));
      for (let i = 0; i < V; i++) total += Math.exp(p[i]) * (p[i] - q[i]);
      rows++;
    }
  }
  return total / rows;
}
