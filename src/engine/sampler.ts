// Sampling over logits, one small function per transform, applied in this order (llama.cpp's
// default chain, with logit bias first as OpenAI applies it): logit bias → repetition/presence/frequency
// penalties → temperature → top-k → top-p → min-p → draw. Transforms write -Infinity into one copy of
// the logits. The log-probabilities reported are the model's own, whatever the sampling settings:
// log-softmax of the logits after logit_bias, before penalties, temperature, filters and constraints
// (what OpenAI and vLLM's default report), for sampled, top and prompt tokens alike.

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
  /** Top alternatives to report (0 = only the chosen token's log-probability; null = none, which skips computing it). */
  logprobs: number | null;
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

/**
 * The temperature of the probabilities a decoder step returns for these parameters: the request's,
 * or 1 for greedy requests (their log-probabilities are those of the plain distribution). The one
 * place that maps a request's temperature to the decoder's; the decoders take it as given.
 */
export function probsTemperature(p: SamplingParams): number {
  return p.temperature >= MIN_TEMPERATURE ? p.temperature : 1;
}

/** Below this temperature sampling is greedy: 1/T would overflow float32 (NaN probabilities). */
export const MIN_TEMPERATURE = 1e-3;

/** Constrained decoding: tokens the grammar does not allow next (allowed[i] = 0) cannot be drawn. */
function applyMask(logits: Float32Array, allowed: Uint8Array): void {
  for (let i = 0; i < logits.length; i++) if (!allowed[i]) logits[i] = -Infinity;
}

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

/** Indices of the finite logits, highest first (ties: lower index first). */
function ranked(logits: Float32Array): number[] {
  const ids: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i] > -Infinity) ids.push(i);
  return ids.sort((a, b) => logits[b] - logits[a]);
}

/** The n highest finite logits' indices, in ranked() order, by insertion into a short list: O(V) for small n. */
function topIndices(logits: Float32Array, n: number): number[] {
  if (n > 64) return ranked(logits).slice(0, n);
  const best: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const l = logits[i];
    if (!(l > -Infinity) || (best.length === n && l <= logits[best[n - 1]])) continue;
    let j = Math.min(best.length, n - 1);
    while (j > 0 && logits[best[j - 1]] < l) best[j] = best[--j];
    best[j] = i;
  }
  return best;
}

function maxOf(logits: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  return max;
}

// exp(logit - max) per token, reused across calls (sampling is synchronous).
let expScratch = new Float64Array(0);
function expsOf(logits: Float32Array, max: number): { exps: Float64Array; sum: number } {
  if (expScratch.length < logits.length) expScratch = new Float64Array(logits.length);
  const exps = expScratch;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += exps[i] = Math.exp(logits[i] - max);
  return { exps, sum };
}

/** out = softmax(logits / temperature), for backends whose graph does not return probabilities. */
export function softmaxInto(logits: Float32Array, out: Float32Array, temperature: number): void {
  const max = maxOf(logits);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp((logits[i] - max) / temperature);
  for (let i = 0; i < logits.length; i++) out[i] /= sum;
}

export function applyTopK(logits: Float32Array, k: number): void {
  if (k <= 0 || k >= logits.length) return;
  const keep = topIndices(logits, k);
  const kept = new Float32Array(keep.map((id) => logits[id]));
  logits.fill(-Infinity);
  keep.forEach((id, j) => (logits[id] = kept[j]));
}

const BUCKETS_PER_NAT = 8;
const BUCKETS = 40 * BUCKETS_PER_NAT; // tokens more than 40 nats below the best share the last bucket

export function applyTopP(logits: Float32Array, topP: number): void {
  if (topP >= 1) return;
  // Keep the smallest set of highest-ranked tokens whose probability reaches topP. Sorting the whole
  // vocabulary per token costs ~1.5 ms at 8k; instead bucket tokens by how far below the best they
  // are, take whole buckets from the top, and sort only the bucket where the mass crosses topP.
  const max = maxOf(logits);
  const { exps, sum } = expsOf(logits, max);
  const bucketOf = (l: number) => Math.min(BUCKETS, Math.floor((max - l) * BUCKETS_PER_NAT));
  const mass = new Float64Array(BUCKETS + 1);
  for (let i = 0; i < logits.length; i++) if (exps[i] > 0) mass[bucketOf(logits[i])] += exps[i];
  const target = topP * sum;
  let cumulative = 0;
  let edge = 0;
  while (edge < BUCKETS && cumulative + mass[edge] < target) cumulative += mass[edge++];
  const edgeIds: number[] = [];
  for (let i = 0; i < logits.length; i++) if (exps[i] > 0 && bucketOf(logits[i]) === edge) edgeIds.push(i);
  edgeIds.sort((a, b) => logits[b] - logits[a]);
  const keep = new Uint8Array(logits.length);
  for (const id of edgeIds) {
    keep[id] = 1;
    cumulative += exps[id];
    if (cumulative >= target) break;
  }
  for (let i = 0; i < logits.length; i++) if (!keep[i] && (exps[i] === 0 || bucketOf(logits[i]) >= edge)) logits[i] = -Infinity;
}

export function applyMinP(logits: Float32Array, minP: number): void {
  if (minP <= 0) return;
  const threshold = maxOf(logits) + Math.log(minP); // p_i ≥ minP · p_max  ⇔  l_i ≥ l_max + log(minP)
  for (let i = 0; i < logits.length; i++) if (logits[i] < threshold) logits[i] = -Infinity;
}

/** The logits after a logit bias (the same array when there is none). */
function biased(logits: Float32Array, bias: Map<number, number>): Float32Array {
  if (!bias.size) return logits;
  const out = new Float32Array(logits);
  applyLogitBias(out, bias);
  return out;
}

/** log-softmax value of one entry, after an optional logit bias. */
export function logSoftmaxAt(logits: Float32Array, id: number, bias: Map<number, number> = new Map()): number {
  const l = biased(logits, bias);
  const max = maxOf(l);
  return l[id] - max - Math.log(expsOf(l, max).sum);
}

/**
 * The model's log-probabilities of `token` and of the `n` likeliest tokens: log-softmax of the raw
 * logits after logit bias. `probs` is softmax(raw / T) from the graph: at T = 1 without a bias it is
 * that distribution already, and no exp pass is needed.
 */
function modelLogprobs(raw: Float32Array, p: SamplingParams, token: number, probs?: Float32Array): Pick<Sampled, "logprob" | "top"> {
  if (p.logprobs === null) return { logprob: NaN, top: [] };
  const n = p.logprobs;
  if (probs && !p.logitBias.size && probsTemperature(p) === 1) {
    return { logprob: Math.log(probs[token]), top: n > 0 ? topIndices(raw, n).map((t) => ({ token: t, logprob: Math.log(probs[t]) })) : [] };
  }
  const l = biased(raw, p.logitBias);
  const max = maxOf(l);
  const logZ = max + Math.log(expsOf(l, max).sum);
  return { logprob: l[token] - logZ, top: n > 0 ? topIndices(l, n).map((t) => ({ token: t, logprob: l[t] - logZ })) : [] };
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

/** True when no transform but temperature applies, so softmax(logits / temperature) is the distribution. */
function onlyTemperature(p: SamplingParams, counts: Map<number, number>): boolean {
  const penalties = counts.size > 0 && (p.presencePenalty !== 0 || p.frequencyPenalty !== 0 || p.repetitionPenalty !== 1);
  return p.logitBias.size === 0 && !penalties && (p.temperature === 0 || (p.topK <= 0 && p.topP >= 1 && p.minP <= 0));
}

/**
 * Process raw logits with every transform, then pick a token (greedy at temperature 0). `probs`, when
 * given, is softmax(raw / temperature) from the graph (temperature 1 for greedy): with no other
 * transform the draw reads it directly, skipping an exp per vocabulary entry.
 */
export function sample(raw: Float32Array, counts: Map<number, number>, p: SamplingParams, rng: () => number, probs?: Float32Array, allowed?: Uint8Array): Sampled {
  if (p.temperature > 0 && p.temperature < MIN_TEMPERATURE) p = { ...p, temperature: 0 };
  const token = pick(raw, counts, p, rng, probs, allowed);
  return { token, ...modelLogprobs(raw, p, token, probs) };
}

function pick(raw: Float32Array, counts: Map<number, number>, p: SamplingParams, rng: () => number, probs?: Float32Array, allowed?: Uint8Array): number {
  if (probs && onlyTemperature(p, counts)) {
    if (allowed) return pickAllowed(raw, probs, allowed, p, rng);
    return p.temperature === 0 ? argmax(raw) : draw(probs, probs.length, 1, rng);
  }
  const logits = new Float32Array(raw); // a copy: the transforms write into it
  if (allowed) applyMask(logits, allowed);
  applyLogitBias(logits, p.logitBias);
  applyPenalties(logits, counts, p);
  if (p.temperature === 0) return argmax(logits);
  applyTemperature(logits, p.temperature);
  applyTopK(logits, p.topK);
  applyTopP(logits, p.topP);
  applyMinP(logits, p.minP);
  const { exps, sum } = expsOf(logits, maxOf(logits));
  return draw(exps, logits.length, sum, rng);
}

/**
 * A draw from the graph's probabilities restricted to the allowed tokens: one pass to sum them, one
 * to draw, with no exp (constrained decoding costs little more than free decoding).
 */
function pickAllowed(raw: Float32Array, probs: Float32Array, allowed: Uint8Array, p: SamplingParams, rng: () => number): number {
  let sum = 0;
  for (let i = 0; i < probs.length; i++) if (allowed[i]) sum += probs[i];
  // Greedy, or nothing allowed has any mass (a vanishing temperature put it all on a refused token).
  if (p.temperature === 0 || !(sum > 0)) {
    let token = -1;
    for (let i = 0; i < raw.length; i++) if (allowed[i] && (token < 0 || raw[i] > raw[token])) token = i;
    return token;
  }
  let r = rng() * sum;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (!allowed[i] || probs[i] === 0) continue;
    last = i;
    r -= probs[i];
    if (r <= 0) return i;
  }
  return last;
}

/** Inverse-CDF draw from unnormalised probabilities. */
function draw(exps: Float32Array | Float64Array, n: number, sum: number, rng: () => number): number {
  let r = rng() * sum;
  let last = 0;
  for (let i = 0; i < n; i++) {
    if (exps[i] === 0) continue;
    last = i;
    r -= exps[i];
    if (r <= 0) return i;
  }
  return last;
}

export function topLogprobs(logits: Float32Array, n: number): { token: number; logprob: number }[] {
  const max = maxOf(logits);
  const logZ = max + Math.log(expsOf(logits, max).sum);
  return topIndices(logits, n).map((token) => ({ token, logprob: logits[token] - logZ }));
}
