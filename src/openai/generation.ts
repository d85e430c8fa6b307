// Running the n choices of one request: each choice is an engine generation whose tokens pass
// through the stop-string text stream; the choices' deltas are merged into one async stream.
import { QueueFullError, type Constraint, type GeneratedToken, type Generation } from "../engine/engine.js";
import type { SamplingParams } from "../engine/sampler.js";
import type { LoadedModel } from "../model.js";
import { ApiError } from "./errors.js";
import { StopTextStream } from "./text-stream.js";

export interface ChoiceRequest {
  prompt: number[];
  maxTokens: number;
  sampling: SamplingParams;
  stops: string[];
  promptLogprobs: boolean;
  /** A seed was given: the output must not depend on what ran before. */
  seeded: boolean;
  /** Constrained decoding (JSON mode): a fresh constraint per choice. */
  constraint?: () => Constraint;
}

/** Who a request comes from, as the app sees it. */
export interface ClientScope {
  /** Fairness between clients: the request's `user`, else the client's address. */
  client?: string;
  /** Prefix-cache scope (address and API key); undefined: this request neither reuses nor shares one. */
  cacheScope?: string;
  /** Aborts when the client goes away (every host gives one). */
  signal?: AbortSignal;
  /** Called with each choice's index as each of its tokens comes out of the engine (latency metrics). */
  onToken?: (choice: number) => void;
  /** Filled by the handler for the access log: prompt and completion tokens. */
  usage?: { prompt: number; completion: number };
}

export interface ChoiceDelta {
  index: number;
  text: string;
  /** Generated tokens behind this text (the end-of-text token is never included). */
  tokens: GeneratedToken[];
  finish: "stop" | "length" | null;
  generation: Generation;
}

async function* runChoice(model: LoadedModel, gen: Generation, req: ChoiceRequest, index: number, onToken?: (choice: number) => void): AsyncGenerator<ChoiceDelta> {
  const text = new StopTextStream(model.tokenizer.streamDecoder({ skipSpecial: true }), req.stops);
  if (req.maxTokens === 0) {
    // Nothing is generated; the engine ends the generation once the prompt's log-probabilities (if asked for) are in.
    for await (const _ of gen);
    yield { index, text: "", tokens: [], finish: "length", generation: gen };
    return;
  }
  for await (const tok of gen) {
    onToken?.(index);
    if (tok.finish === "stop") {
      yield { index, text: text.flush(), tokens: [], finish: "stop", generation: gen };
      return;
    }
    const delta = text.push(tok.token);
    if (text.stopped) {
      yield { index, text: delta, tokens: [tok], finish: "stop", generation: gen };
      return; // leaving the loop cancels the generation
    }
    const finish = tok.finish === "length" ? "length" : null;
    yield { index, text: finish ? delta + text.flush() : delta, tokens: [tok], finish, generation: gen };
    if (finish) return;
  }
  // The engine ended the generation early (server shutdown): close the choice like a length cut.
  yield { index, text: text.flush(), tokens: [], finish: "length", generation: gen };
}

/** Abort `controller` when `signal` aborts (or already has). */
export function linkAbort(controller: AbortController, signal: AbortSignal | undefined): void {
  if (signal?.aborted) controller.abort();
  else signal?.addEventListener("abort", () => controller.abort(), { once: true });
}

/**
 * Queue every choice (all or none: a full queue cancels those already queued), then merge their
 * deltas. Consecutive choices of the same prompt are one engine request: the prompt is fed once.
 */
export function startChoices(model: LoadedModel, reqs: ChoiceRequest[], signal: AbortSignal, scope: ClientScope): AsyncGenerator<ChoiceDelta> {
  const gens: Generation[] = [];
  const stopTokens = model.tokenizer.eosId !== undefined ? new Set([model.tokenizer.eosId]) : new Set<number>();
  try {
    for (let i = 0; i < reqs.length;) {
      const first = reqs[i];
      let end = i + 1;
      while (end < reqs.length && reqs[end].prompt === first.prompt) end++;
      gens.push(...model.engine.generateChoices(
        {
          prompt: first.prompt,
          promptLogprobs: first.promptLogprobs,
          reusePrefix: !first.seeded && scope.cacheScope !== undefined,
          cacheScope: scope.cacheScope,
          client: scope.client,
          signal,
        },
        reqs.slice(i, end).map((req) => ({ maxTokens: req.maxTokens, sampling: req.sampling, stopTokens, constraint: req.constraint?.() })),
      ));
      i = end;
    }
  } catch (err) {
    for (const g of gens) void g[Symbol.asyncIterator]().return?.();
    if (err instanceof QueueFullError) {
      throw new ApiError(429, err.message, "rate_limit_error", null, "rate_limit_exceeded", { "Retry-After": String(err.retryAfterSeconds) });
    }
    throw err;
  }
  if (scope.usage) scope.usage.prompt = reqs.reduce((sum, r) => sum + r.prompt.length, 0);
  const counted = merge(gens.map((g, i) => runChoice(model, g, reqs[i], i, scope.onToken)));
  return scope.usage ? countUsage(counted, scope.usage) : counted;
}

async function* countUsage(deltas: AsyncGenerator<ChoiceDelta>, usage: { completion: number }): AsyncGenerator<ChoiceDelta> {
  for await (const d of deltas) {
    usage.completion += deltaTokenCount(d);
    yield d;
  }
}

async function* merge<T>(sources: AsyncGenerator<T>[]): AsyncGenerator<T> {
  if (sources.length === 1) return yield* sources[0];
  const pending = new Map(sources.map((s, i) => [i, s.next().then((r) => ({ i, r }))]));
  try {
    while (pending.size) {
      const { i, r } = await Promise.race(pending.values());
      if (r.done) pending.delete(i);
      else {
        pending.set(i, sources[i].next().then((r2) => ({ i, r: r2 })));
        yield r.value;
      }
    }
  } finally {
    for (const s of sources) void s.return(undefined);
  }
}

/** Tokens a delta accounts for in `usage` (the end-of-text token counts, though it is never shown). */
export function deltaTokenCount(d: ChoiceDelta): number {
  return d.tokens.length + (d.finish === "stop" && d.tokens.length === 0 ? 1 : 0);
}

export interface ChoiceResult {
  text: string;
  tokens: GeneratedToken[];
  finish: "stop" | "length";
  counted: number;
  generation: Generation | null;
}

/** Drain the deltas of n choices into whole results (the non-streaming responses). */
export async function collectChoices(deltas: AsyncIterable<ChoiceDelta>, n: number): Promise<ChoiceResult[]> {
  const results: ChoiceResult[] = Array.from({ length: n }, () => ({ text: "", tokens: [], finish: "length", counted: 0, generation: null }));
  for await (const d of deltas) {
    const r = results[d.index];
    r.text += d.text;
    r.tokens.push(...d.tokens);
    r.counted += deltaTokenCount(d);
    r.generation = d.generation;
    if (d.finish) r.finish = d.finish;
  }
  return results;
}
