// Export parity: the ONNX graphs in onnxruntime-web (and native onnxruntime) against PyTorch.
import { describe, expect, it } from "vitest";
import type { OnnxDecoder } from "../src/engine/onnx-model.js";
import { argmax } from "../src/engine/sampler.js";
import { fixtureShape, nativeDecoder, parity, referenceRow, validationTokens, webDecoder } from "./helpers/fixture.js";

const V = fixtureShape.vocabSize;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Max |Δlogit| over every reference case (prefill, decode steps, left-padded batch of two). */
async function parityError(dec: OnnxDecoder): Promise<number> {
  let worst = 0;
  for (const c of parity.cases) {
    if (c.kind === "single") {
      const cache = dec.newCache();
      for (const s of c.steps) {
        const [logits] = await dec.step([{ cache, tokens: s.input }]);
        worst = Math.max(worst, maxAbsDiff(logits.subarray(logits.length - V), referenceRow(s.row)));
      }
    } else {
      // The reference batch is left-padded; the engine pads the same way from unpadded rows.
      const caches = [dec.newCache(), dec.newCache()];
      let inputs = c.input_ids.map((ids, b) => ids.filter((_, j) => c.attention_mask[b][j] === 1));
      for (const s of c.steps) {
        const out = await dec.step(caches.map((cache, b) => ({ cache, tokens: s.input ? [s.input[b]] : inputs[b] })));
        out.forEach((logits, b) => (worst = Math.max(worst, maxAbsDiff(logits.subarray(logits.length - V), referenceRow(s.rows[b])))));
        inputs = [];
      }
    }
  }
  return worst;
}

async function greedy(dec: OnnxDecoder, prompt: number[], n: number): Promise<number[]> {
  const cache = dec.newCache();
  const out: number[] = [];
  let feed = prompt;
  for (let i = 0; i < n; i++) {
    const [logits] = await dec.step([{ cache, tokens: feed }]);
    const next = argmax(logits.subarray(logits.length - V));
    out.push(next);
    feed = [next];
  }
  return out;
}

/** Per-token argmax and log-likelihood over windows of real validation text. */
async function scoreText(dec: OnnxDecoder, tokens: number[], window = 256) {
  const argmaxes: number[] = [];
  let nll = 0;
  let count = 0;
  for (let start = 0; start + 1 < tokens.length; start += window) {
    const chunk = tokens.slice(start, start + window + 1);
    const [logits] = await dec.step([{ cache: dec.newCache(), tokens: chunk.slice(0, -1) }]);
    for (let i = 0; i < chunk.length - 1; i++) {
      const row = logits.subarray(i * V, (i + 1) * V);
      argmaxes.push(argmax(row));
      let max = -Infinity;
      for (const l of row) max = Math.max(max, l);
      let sum = 0;
      for (const l of row) sum += Math.exp(l - max);
      nll += max + Math.log(sum) - row[chunk[i + 1]];
      count++;
    }
  }
  return { argmaxes, perplexity: Math.exp(nll / count), count };
}

describe("fp32 graph", () => {
  it("matches PyTorch within 1e-3 in onnxruntime-web (prefill, decode, padded batch)", async () => {
    expect(await parityError(await webDecoder("onnx/model.onnx"))).toBeLessThanOrEqual(1e-3);
  });

  it("matches PyTorch within 1e-3 in native onnxruntime", async () => {
    expect(await parityError(await nativeDecoder("onnx/model.onnx"))).toBeLessThanOrEqual(1e-3);
  });

  it("gives PyTorch's greedy continuation on web and native alike", async () => {
    const web = await webDecoder("onnx/model.onnx");
    const native = await nativeDecoder("onnx/model.onnx");
    for (const g of parity.greedy) {
      const n = g.tokens.length;
      expect(await greedy(web, g.prompt, n)).toEqual(g.tokens);
      expect(await greedy(native, g.prompt, n)).toEqual(g.tokens);
    }
  });
});

describe("int8 graph", () => {
  it("agrees with fp32 on real text: top-1 and perplexity (fixture bounds, see model/README.md)", async () => {
    const tokens = validationTokens(1025);
    const fp32 = await scoreText(await webDecoder("onnx/model.onnx"), tokens);
    const int8 = await scoreText(await webDecoder("onnx/model_quantized.onnx"), tokens);
    expect(fp32.count).toBeGreaterThanOrEqual(1000);
    const agree = fp32.argmaxes.filter((a, i) => a === int8.argmaxes[i]).length / fp32.count;
    // The fixture is a 0.3M-parameter model whose logits are nearly flat, so ties flip easily;
    // the real model is held to ≥ 95% / 3% (recorded in model/manifest.json).
    expect(agree).toBeGreaterThanOrEqual(0.9);
    expect(Math.abs(int8.perplexity / fp32.perplexity - 1)).toBeLessThan(0.03);
  });

  it("gives the same results on web and native (7-bit weights are exact on both)", async () => {
    const tokens = validationTokens(257);
    const web = await scoreText(await webDecoder("onnx/model_quantized.onnx"), tokens);
    const native = await scoreText(await nativeDecoder("onnx/model_quantized.onnx"), tokens);
    const agree = web.argmaxes.filter((a, i) => a === native.argmaxes[i]).length / web.count;
    expect(agree).toBeGreaterThanOrEqual(0.99);
    expect(Math.abs(web.perplexity / native.perplexity - 1)).toBeLessThan(0.005);
  });
});
