// Sampling over logits, one small function per transform, applied in llama.cpp's order:
// logit bias → repetition/presence/frequency penalties → temperature → top-k → top-p → min-p → draw.
// Transforms write -Infinity into a Float32Array copy; nothing here allocates per vocabulary entry twice.

export interface SamplingParams {
  temperature: number; // 0 = greedy
  topP: number;
  topK: number; // 0 = off
  minP: number; // 0 = off
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number; // 1 = off
  logitBias: Map<number, number>;
  seed: number;
  logprobs: number; // top alternatives to report (0 = only the chosen token's)
}

export const DEFAULT_SAMPLING: SamplingParams = {
  temperature: 1,
  topP: 1,
  topK: 0,
  minP: 0,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repetitionPenalty: 1,
  logitBias: new Map(),
  seed: 0,
  logprobs: 0,
};

export function applyLogitBias(logits: Float32Array, bias: Map<number, number>): void {
  for (const [id, b] of bias) if (id >= 0 && id < logits.length) logits[id] += b;
}

/** OpenAI presence/frequency penalties and the multiplicative repetition penalty (CTRL / llama.cpp). */
export function applyPenalties(logits: Float32Array, counts: Map<number, number>, p: SamplingParams): void {
  for (const [id, n] of counts) {
    let l = logits[id];
    if (p.repetitionPenalty !== 1) l = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty;
    logits[id] = l - p.frequencyPenalty * n - (n > 0 ? p.presencePenalty : 0);
  }
}

export function applyTemperature(logits: Float32Array, temperature: number): void {
  if (temperature === 1) return;
  for (let i = 0; i < logits.length; i++) logits[i] /= temperature;
}

/** Indices of the finite logits, highest first. */
function ranked(logits: Float32Array): number[] {
  const ids: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i] > -Infinity) ids.push(i);
  return ids.sort((a, b) => logits[b] - logits[a]);
}

export function applyTopK(logits: Float32Array, k: number): void {
  if (k <= 0 || k >= logits.length) return;
  for (const id of ranked(logits).slice(k)) logits[id] = -Infinity;
}

export function applyTopP(logits: Float32Array, topP: number): void {
  if (topP >= 1) return;
  // Sorting the whole vocabulary per token is the slow part (~4 ms at 8k); tokens 20 nats below the
  // best carry < e^-20 each, so sort only the ones above that line unless the nucleus needs the tail.
  let max = -Infinity;
  for (const l of logits) if (l > max) max = l;
  const head: number[] = [];
  let z = 0;
  let headMass = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i] - max);
    z += e;
    if (logits[i] >= max - 20) {
      head.push(i);
      headMass += e;
    }
  }
  if (headMass / z < topP) {
    head.length = 0;
    for (let i = 0; i < logits.length; i++) if (logits[i] > -Infinity) head.push(i);
  }
  head.sort((a, b) => logits[b] - logits[a]);
  const keep = new Uint8Array(logits.length);
  let cumulative = 0;
  for (const id of head) {
    if (cumulative >= topP) break; // keep the smallest prefix reaching topP
    keep[id] = 1;
    cumulative += Math.exp(logits[id] - max) / z;
  }
  for (let i = 0; i < logits.length; i++) if (!keep[i]) logits[i] = -Infinity;
}

export function applyMinP(logits: Float32Array, minP: number): void {
  if (minP <= 0) return;
  let max = -Infinity;
  for (const l of logits) if (l > max) max = l;
  const threshold = max + Math.log(minP); // p_i ≥ minP · p_max  ⇔  l_i ≥ l_max + log(minP)
  for (let i = 0; i < logits.length; i++) if (logits[i] < threshold) logits[i] = -Infinity;
}

/** log-softmax value of one entry. */
export function logSoftmaxAt(logits: Float32Array, id: number): number {
  let max = -Infinity;
  for (const l of logits) if (l > max) max = l;
  let sum = 0;
  for (const l of logits) sum += Math.exp(l - max);
  return logits[id] - max - Math.log(sum);
}

/** Seeded PRNG (mulberry32): equal seeds and parameters give equal samples. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

export interface Sampled {
  token: number;
  logprob: number;
  top: { token: number; logprob: number }[];
}

/** Process raw logits with every transform, then pick a token (greedy at temperature 0). */
export function sample(raw: Float32Array, counts: Map<number, number>, p: SamplingParams, rng: () => number): Sampled {
  const logits = new Float32Array(raw); // a copy: the transforms write into it
  applyLogitBias(logits, p.logitBias);
  applyPenalties(logits, counts, p);
  if (p.temperature > 0) {
    applyTemperature(logits, p.temperature);
    applyTopK(logits, p.topK);
    applyTopP(logits, p.topP);
    applyMinP(logits, p.minP);
  }
  // One exp pass serves the draw and the log-probabilities.
  let max = -Infinity;
  for (const l of logits) if (l > max) max = l;
  let sum = 0;
  let token: number;
  if (p.temperature === 0) {
    for (const l of logits) sum += Math.exp(l - max);
    token = argmax(logits);
  } else {
    const exps = new Float32Array(logits.length);
    for (let i = 0; i < logits.length; i++) sum += exps[i] = Math.exp(logits[i] - max);
    token = draw(exps, sum, rng);
  }
  const logZ = max + Math.log(sum);
  const top = p.logprobs > 0 ? ranked(logits).slice(0, p.logprobs).map((t) => ({ token: t, logprob: logits[t] - logZ })) : [];
  return { token, logprob: logits[token] - logZ, top };
}

/** Inverse-CDF draw from unnormalised probabilities. */
function draw(exps: Float32Array, sum: number, rng: () => number): number {
  let r = rng() * sum;
  let last = 0;
  for (let i = 0; i < exps.length; i++) {
    if (exps[i] === 0) continue;
    last = i;
    r -= exps[i];
    if (r <= 0) return i;
  }
  return last;
}

export function topLogprobs(logits: Float32Array, n: number): { token: number; logprob: number }[] {
  let max = -Infinity;
  for (const l of logits) if (l > max) max = l;
  let sum = 0;
  for (const l of logits) sum += Math.exp(l - max);
  const logZ = max + Math.log(sum);
  return ranked(logits).slice(0, n).map((token) => ({ token, logprob: logits[token] - logZ }));
}
