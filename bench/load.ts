// Server load test: N concurrent streaming clients against the running server on 127.0.0.1.
import { request } from "undici";
import { percentile } from "./stats.js";

export interface LoadRow {
  clients: number;
  requests: number;
  errors: number;
  tokens: number;
  seconds: number;
  aggregate_tok_s: number;
  ttft_ms_p50: number;
  ttft_ms_p99: number;
  itl_ms_p50: number;
  itl_ms_p99: number;
}

async function oneStream(baseURL: string, model: string, i: number, maxTokens: number, ttfts: number[], itls: number[], user?: string): Promise<number> {
  const t0 = performance.now();
  const res = await request(`${baseURL}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: `Once upon a time, in the kingdom number ${i},`, max_tokens: maxTokens, temperature: 0.8, seed: i, stream: true, ...(user ? { user } : {}) }),
  });
  if (res.statusCode !== 200) {
    await res.body.text();
    throw new Error(`HTTP ${res.statusCode}`);
  }
  let tokens = 0;
  let last = 0;
  let buffer = "";
  for await (const chunk of res.body) {
    buffer += chunk.toString();
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const now = performance.now();
      if (tokens === 0) ttfts.push(now - t0);
      else itls.push(now - last);
      last = now;
      tokens++;
    }
  }
  return tokens;
}

export async function loadTest(baseURL: string, model: string, clients: number, perClient: number, maxTokens: number): Promise<LoadRow> {
  const ttfts: number[] = [];
  const itls: number[] = [];
  let errors = 0;
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let k = 0; k < perClient; k++) {
        try {
          const n = await oneStream(baseURL, model, c * 100 + k, maxTokens, ttfts, itls);
          tokens += n; // (not `tokens += await …`: that reads `tokens` before the await and loses updates)
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return {
    clients, requests: clients * perClient, errors, tokens, seconds,
    aggregate_tok_s: tokens / seconds,
    ttft_ms_p50: percentile(ttfts, 50), ttft_ms_p99: percentile(ttfts, 99),
    itl_ms_p50: percentile(itls, 50), itl_ms_p99: percentile(itls, 99),
  };
}

/** A hostile client of issue 27: what it loops on a 450-token prompt, and the `user` it sends (none: it shares the victim's address). */
export interface Attack {
  name: string;
  n: number;
  echo: boolean;
  user?: string;
}

/** The four patterns of issue 27's table; the victim sends `user: "v"` when the attacker sends one. */
export const ATTACKS: Attack[] = [
  { name: "n 8, echo + logprobs, same address", n: 8, echo: true },
  { name: "n 8, echo + logprobs, user a (victim user v)", n: 8, echo: true, user: "a" },
  { name: "n 1, echo + logprobs, same address", n: 1, echo: true },
  { name: "n 8, no echo, same address", n: 8, echo: false },
];

export interface FairnessRow {
  attack: string;
  /** A lone greedy stream of 160 tokens, tok/s. */
  solo_tok_s: number;
  /** The same stream while the attacker loops its request (max_tokens 1) on a 450-token prompt, from 4 connections. */
  under_flood_tok_s: number;
  ratio: number;
  flood_requests: number;
  /** Prompt tokens the model ran per attacker request (450 when its n choices share one prefill). */
  fed_prompt_tokens_per_request: number;
}

/** One greedy stream's rate (tokens after the first ÷ the time after the first). */
async function streamRate(baseURL: string, model: string, maxTokens: number, user?: string): Promise<number> {
  const ttfts: number[] = [];
  const itls: number[] = [];
  const n = await oneStream(baseURL, model, 7, maxTokens, ttfts, itls, user);
  return (n - 1) / (itls.reduce((a, b) => a + b, 0) / 1000);
}

const fedPromptTokens = async (baseURL: string) =>
  Number(/^tinylm_prompt_tokens_fed_total (\d+)/m.exec(await (await request(`${baseURL}/metrics`)).body.text())?.[1] ?? NaN);

/** A victim stream's throughput alone and under one attack (goal: ≥ 50% of solo). */
export async function fairness(baseURL: string, model: string, attack: Attack): Promise<FairnessRow> {
  const victimUser = attack.user ? "v" : undefined;
  const solo = await streamRate(baseURL, model, 160, victimUser);
  let stop = false;
  let floodRequests = 0;
  const fedBefore = await fedPromptTokens(baseURL);
  const prompt = Array.from({ length: 450 }, (_, i) => 300 + ((i * 37) % 4000));
  const body = JSON.stringify({ model, prompt, n: attack.n, max_tokens: 1, ...(attack.echo ? { echo: true, logprobs: 0 } : {}), ...(attack.user ? { user: attack.user } : {}) });
  const flood = Array.from({ length: 4 }, async () => {
    while (!stop) {
      const res = await request(`${baseURL}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      await res.body.text();
      floodRequests++;
    }
  });
  await new Promise((r) => setTimeout(r, 200)); // the flood is under way
  const under = await streamRate(baseURL, model, 160, victimUser);
  stop = true;
  await Promise.all(flood);
  const fed = (await fedPromptTokens(baseURL)) - fedBefore;
  // The victim's own prompt (a dozen tokens) is in the count too; it rounds away.
  return { attack: attack.name, solo_tok_s: solo, under_flood_tok_s: under, ratio: under / solo, flood_requests: floodRequests, fed_prompt_tokens_per_request: fed / floodRequests };
}
