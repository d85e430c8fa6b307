// Bit-for-bit comparisons of the kernels' outputs (two threads, two dot-product forms).
import type { SimdDecoder } from "../../src/engine/simd/decoder.js";

/** Deterministic values around 0 (sums of uniforms), with a 6× outlier every 61st, like activations. */
export function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Float32Array.from({ length: n }, (_, i) => (u() + u() + u() - 1.5) * (i % 61 === 3 ? 6 : 1));
}

/** Where two lists of outputs first differ in their bits ("same" if nowhere): a small failure message, not a diff of megabytes. */
export function firstDifference(a: Float32Array[], b: Float32Array[]): string {
  if (a.length !== b.length) return `${a.length} outputs against ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    const x = new Uint32Array(a[i].buffer, a[i].byteOffset, a[i].length), y = new Uint32Array(b[i].buffer, b[i].byteOffset, b[i].length);
    if (x.length !== y.length) return `output ${i}: ${x.length} values against ${y.length}`;
    const k = x.findIndex((v, j) => v !== y[j]);
    if (k >= 0) return `output ${i}, value ${k}: ${a[i][k]} against ${b[i][k]}`;
  }
  return "same";
}

/** A decoder's logits over a 100-token prompt (two prefill chunks, all positions), a second sequence's 9, then 4 steps decoding both as a batch. */
export async function chunksDecodeBatch(dec: SimdDecoder): Promise<Float32Array[]> {
  const [a, b] = [dec.newCache(), dec.newCache()];
  const prompt = Array.from({ length: 100 }, (_, i) => (i * 131 + 7) % 8000); // two chunks: 64 + 36 rows
  const out = [await dec.step([{ cache: a, tokens: prompt, logits: "all" }])];
  out.push(await dec.step([{ cache: b, tokens: prompt.slice(0, 9) }]));
  for (let t = 0; t < 4; t++) out.push(await dec.step([{ cache: a, tokens: [100 + t] }, { cache: b, tokens: [200 + t] }]));
  return out.flat().map(({ logits }) => logits);
}
