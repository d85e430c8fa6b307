// The scheduler: a bounded queue in front of a continuous batch, with one batched decoder step per
// iteration, as llama.cpp's update_slots builds one llama_batch. A step holds every running
// sequence's next token first, then prompt chunks under a token budget, picked round-robin between
// *requests* (the least recently fed first; the client — `user`, else address — only breaks ties), so
// a prompt waits for the other prompts' turns, never for whoever sent more of them. While sequences
// run, the budget keeps a step's prompt share near three quarters of what the decode rows alone
// take: a flood of prompts slows running streams to about half speed and never stalls them.
// A request's prompt is fed once, whatever its n: each choice samples its first token from the
// prompt's last logits, and only a choice that goes on takes a copy of the prompt's cache (the last
// one takes the cache itself). Sequences join and leave the batch between steps.
import { Channel } from "./channel.js";
import type { Decoder, LogitsWanted, SequenceCache, StepInput, StepOutput } from "./decoder.js";
import { createRng, logSoftmaxAt, probsTemperature, sample, type Sampled, type SamplingParams } from "./sampler.js";

/** Most prompt tokens in one step (when no sequence is running, the whole budget). */
const MAX_STEP_TOKENS = 256;
/**
 * Prompt time per step relative to the decode rows' time, while sequences run: 3/4 leaves running
 * streams a little over half their speed under a flood of prompts (the bench's victim rows), also
 * paying for the flood's responses, which are built on the same event loop.
 */
const PREFILL_SHARE = 0.75;
/**
 * Bytes of logits and probabilities (2 × 4 per vocabulary entry and row) one step may hand back for
 * a prompt that wants every position's (echo + logprobs): 64 rows of an 8k vocabulary, 10 of 49k.
 * Counted in bytes, not rows, so the JS memory a step holds does not grow with the vocabulary (on
 * Workers it counts against the isolate's 128 MB); a step holds at most MAX_BATCH such prompts.
 */
const ALL_LOGITS_BYTES = 4 * 2 ** 20;
/** Under a flood every step holds prompt tokens: every this many steps one without re-measures the decode rows alone. */
const REMEASURE_EVERY = 16;

export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super("the server is busy: too many requests are queued");
  }
}

/** Constrained decoding (e.g. JSON mode): which tokens may come next, and following each one drawn. */
export interface Constraint {
  /** allowed[id] = 1 for the tokens that may come next; `tokensLeft` counts this one. */
  mask(tokensLeft: number): Uint8Array;
  advance(token: number): void;
  /** Jump-forward: the tokens that must come next (none when the next is a choice); the engine advances through them. */
  forced?(): number[];
}

/** What the choices of one request share: the prompt, fed once. */
export interface PromptRequest {
  prompt: number[];
  /** Also compute the log-probability of every prompt token (for echo + logprobs). */
  promptLogprobs?: boolean;
  /**
   * Allow reusing a cached prompt prefix. Off for seeded requests: onnxruntime-web's int8 graph
   * quantizes activations per run, so a prompt split differently gives slightly different logits.
   */
  reusePrefix?: boolean;
  signal?: AbortSignal;
  /** Who asked (the request's `user`, else its address): breaks ties between prompts waiting equally long. */
  client?: string;
  /**
   * The prefix cache is reused only within one scope (address and API key): a cache shared across
   * clients would let one client read another's prompt, token by token, through timing.
   */
  cacheScope?: string;
}

/** One choice: how it samples and when it ends. */
export interface ChoiceParams {
  /** 0: nothing is generated (the request wanted only its prompt's log-probabilities, or nothing). */
  maxTokens: number;
  sampling: SamplingParams;
  stopTokens: ReadonlySet<number>;
  constraint?: Constraint;
}

/** A request with one choice. */
export interface GenerateRequest extends PromptRequest, ChoiceParams {}

export interface GeneratedToken extends Sampled {
  /** "stop" when this token is a stop token (not to be shown), "length" when it is the last allowed. */
  finish: "stop" | "length" | null;
}

export interface EngineOptions {
  maxBatch: number; // sequences holding a KV cache (running, or a prompt being fed), ≥ 1
  maxQueue: number; // requests waiting for a place in the batch before 429, ≥ 1
  prefixCache: boolean;
}

export interface EngineStats {
  queued: number;
  running: number;
  /** Prompt tokens of the requests (reused or not). */
  promptTokens: number;
  /** Prompt tokens run through the model: once per prompt, whatever its n. */
  fedPromptTokens: number;
  generatedTokens: number;
  reusedPromptTokens: number;
  steps: number;
}

export interface Generation extends AsyncIterable<GeneratedToken> {
  /** The prompt's token log-probabilities (null for the first), once it is fed, when promptLogprobs was asked for. */
  readonly promptLogprobs: (number | null)[];
}

/** One request's prompt until every choice has started. */
class Prompt {
  cache: SequenceCache | null = null;
  /** Prompt tokens in the cache (reused or fed). */
  fed = 0;
  /** Step of its last chunk (-1: never fed yet): the least recently fed goes first. */
  fedAt = -1;
  /** Whether the first tokens were sampled (a prompt fed again for choices that found no room needs no logits). */
  sampled = false;
  counted = false;
  logprobs: (number | null)[] = [];
  readonly choices: Sequence[] = [];

  constructor(readonly request: PromptRequest, readonly arrival: number) {}

  get live(): boolean {
    return this.choices.some((s) => !s.cancelled);
  }

  get logprobsDone(): boolean {
    return !this.request.promptLogprobs || this.logprobs.length >= this.request.prompt.length;
  }
}

class Sequence {
  readonly channel: Channel<GeneratedToken>;
  readonly counts = new Map<number, number>();
  readonly rng: () => number;
  cache: SequenceCache | null = null;
  pending: number[] = []; // tokens to feed next
  readonly generated: number[] = [];
  cancelled = false;

  constructor(readonly prompt: Prompt, readonly params: ChoiceParams) {
    this.rng = createRng(params.sampling.seed);
    this.channel = new Channel(() => (this.cancelled = true));
  }
}

/** A row of the next step and what to do with its output. */
type Planned = { input: StepInput; seq: Sequence; prompt?: never } | { input: StepInput; prompt: Prompt; seq?: never };

export class Engine {
  /** Requests whose choices have not all started, oldest first. */
  private prompts: Prompt[] = [];
  private running: Sequence[] = [];
  private loop: Promise<void> | null = null;
  /** The cache of the last finished sequence, for a prompt that starts the same way. */
  private prefix: { cache: SequenceCache; tokens: number[]; scope: string | undefined } | null = null;
  private arrivals = 0;
  private lastClient: string | undefined;
  /** Decode rows' time alone (ms) and how many rows that was, and ms per prompt token: to size the budget. */
  private decodeMs: { ms: number; rows: number; step: number } | null = null;
  private msPerPromptToken = 1;
  private readonly counters = { promptTokens: 0, fedPromptTokens: 0, generatedTokens: 0, reusedPromptTokens: 0, steps: 0 };

  constructor(readonly decoder: Decoder, readonly options: EngineOptions) {
    if (!(options.maxBatch >= 1) || !(options.maxQueue >= 1)) throw new Error("maxBatch and maxQueue must be at least 1");
  }

  /** Resolves when no work is left (Workers: keep the request that joined the loop alive until then). */
  whenIdle(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  get maxLength(): number {
    return this.decoder.shape.maxLength;
  }

  /** Queue a request with one choice; throws QueueFullError at once when the queue is full. */
  generate(request: GenerateRequest): Generation {
    return this.generateChoices(request, [request])[0];
  }

  /** Queue a request with n choices sharing one prompt (fed once); throws QueueFullError when the queue is full. */
  generateChoices(request: PromptRequest, choices: ChoiceParams[]): Generation[] {
    if (this.stats.queued >= this.options.maxQueue) throw new QueueFullError(1);
    const prompt = new Prompt(request, this.arrivals++);
    for (const params of choices) {
      const seq = new Sequence(prompt, params);
      if (request.signal?.aborted) seq.channel.return();
      request.signal?.addEventListener("abort", () => seq.channel.return(), { once: true });
      prompt.choices.push(seq);
    }
    // Nothing to compute: no token to generate and no prompt log-probability asked for.
    if (!request.promptLogprobs && choices.every((c) => c.maxTokens <= 0)) for (const seq of prompt.choices) seq.channel.close();
    else this.prompts.push(prompt);
    this.loop ??= this.runLoop().finally(() => (this.loop = null));
    return prompt.choices.map((seq) => ({
      [Symbol.asyncIterator]: () => seq.channel,
      get promptLogprobs() {
        return seq.prompt.logprobs;
      },
    }));
  }

  get stats(): EngineStats {
    const live = this.prompts.filter((p) => p.live);
    return {
      queued: live.filter((p) => !p.cache && !p.sampled).length,
      running: this.running.filter((s) => !s.cancelled).length + live.filter((p) => p.cache).length,
      ...this.counters,
    };
  }

  /**
   * End every generation now (shutdown): each consumer sees its stream end after the tokens it has;
   * requests queued later still run.
   */
  stop(): void {
    for (const seq of [...this.prompts.flatMap((p) => p.choices), ...this.running]) {
      if (seq.cancelled) continue;
      seq.cancelled = true;
      seq.channel.close();
    }
  }

  private async runLoop(): Promise<void> {
    // Yield once so requests arriving in the same tick are batched from the first step.
    await new Promise((r) => setTimeout(r, 0));
    while (this.prompts.length || this.running.length) {
      this.retire();
      this.startChoices();
      const planned = this.plan();
      if (planned.length) await this.runStep(planned);
      this.retire();
      this.startChoices();
      // Let HTTP writes and new requests in between steps.
      await new Promise((r) => (typeof setImmediate === "function" ? setImmediate(r) : setTimeout(r, 0)));
    }
  }

  /** Sequences holding a cache: running, or a prompt in the cache (part-way or waiting for its choices). */
  private holding(): number {
    return this.running.length + this.prompts.filter((p) => p.cache).length;
  }

  /** The next step: every running sequence's pending tokens, then prompt chunks round-robin under the budget. */
  private plan(): Planned[] {
    const planned: Planned[] = this.running.map((seq) => ({
      seq,
      input: { cache: seq.cache!, tokens: seq.pending, temperature: probsTemperature(seq.params.sampling), logits: "last" as LogitsWanted },
    }));
    let budget = this.promptBudget();
    const allRows = Math.max(1, Math.floor(ALL_LOGITS_BYTES / (8 * this.decoder.shape.vocabSize)));
    const last = this.lastClient;
    const candidates = this.prompts
      .filter((p) => p.live && p.fed < p.request.prompt.length)
      .sort((a, b) => a.fedAt - b.fedAt || Number(a.request.client === last) - Number(b.request.client === last) || a.arrival - b.arrival);
    for (const p of candidates) {
      if (budget <= 0) break;
      if (!p.cache) {
        if (this.holding() >= this.options.maxBatch) continue;
        this.startCache(p);
      }
      const { prompt } = p.request;
      const all = !p.logprobsDone;
      const n = Math.min(budget, all ? allRows : budget, prompt.length - p.fed);
      const end = p.fed + n === prompt.length;
      const sampling = end && !p.sampled && p.choices.some((s) => s.params.maxTokens > 0);
      const logits: LogitsWanted = all ? "all" : sampling ? "last" : "none";
      planned.push({ prompt: p, input: { cache: p.cache!, tokens: prompt.slice(p.fed, p.fed + n), temperature: probsTemperature(p.choices[0].params.sampling), logits } });
      budget -= n;
      p.fedAt = this.counters.steps;
      this.lastClient = p.request.client;
    }
    return planned;
  }

  /** Prompt tokens this step may carry: all of MAX_STEP_TOKENS when nothing runs, else ~PREFILL_SHARE of the decode rows' time. */
  private promptBudget(): number {
    const rows = this.running.length;
    if (!rows) return MAX_STEP_TOKENS;
    const d = this.decodeMs;
    const stale = !d || this.counters.steps - d.step >= REMEASURE_EVERY || rows > 2 * d.rows || 2 * rows < d.rows;
    if (stale) return 0; // measure the decode rows alone first
    return Math.max(1, Math.min(MAX_STEP_TOKENS, Math.floor((PREFILL_SHARE * d.ms * (rows / d.rows)) / this.msPerPromptToken)));
  }

  private async runStep(planned: Planned[]): Promise<void> {
    const start = performance.now();
    const outs = await this.guardedStep(planned);
    const ms = performance.now() - start;
    this.counters.steps++;
    const decodeRows = planned.filter((p) => p.seq).length;
    const promptTokens = planned.reduce((sum, p) => sum + (p.prompt ? p.input.tokens.length : 0), 0);
    if (!promptTokens) this.decodeMs = { ms, rows: decodeRows, step: this.counters.steps };
    else {
      const decodePart = decodeRows && this.decodeMs ? this.decodeMs.ms * (decodeRows / this.decodeMs.rows) : 0;
      const perToken = Math.max(1e-3, (ms - decodePart) / promptTokens);
      this.msPerPromptToken = 0.7 * this.msPerPromptToken + 0.3 * perToken;
    }
    planned.forEach((p, i) => {
      const out = outs[i];
      if (out instanceof Error) {
        for (const seq of p.seq ? [p.seq] : p.prompt.choices) {
          seq.cancelled = true;
          seq.channel.close(out);
        }
      } else if (p.seq) this.emit(p.seq, out.logits, out.probs);
      else this.fedChunk(p.prompt, p.input, out);
    });
  }

  /**
   * The step for every planned row; when it fails, each row whose cache it left unchanged runs again
   * alone, so that a fault in one sequence's input ends that sequence only.
   */
  private async guardedStep(planned: Planned[]): Promise<(StepOutput | Error)[]> {
    const lengths = planned.map((p) => p.input.cache.length);
    try {
      return await this.decoder.step(planned.map((p) => p.input));
    } catch (err) {
      const outs: (StepOutput | Error)[] = [];
      for (const [i, p] of planned.entries()) {
        const untouched = planned.length > 1 && p.input.cache.length === lengths[i];
        outs.push(untouched ? await this.decoder.step([p.input]).then(([o]) => o, (e: Error) => e) : (err as Error));
      }
      return outs;
    }
  }

  /** A prompt chunk is in the cache: note its log-probabilities; after the last, sample every choice's first token. */
  private fedChunk(p: Prompt, input: StepInput, out: StepOutput): void {
    const { prompt } = p.request;
    const vocab = this.decoder.shape.vocabSize;
    const chunk = input.tokens;
    if (input.logits === "all") {
      // Row i gives the distribution of the token after chunk[i], after the request's logit bias.
      const bias = p.choices[0].params.sampling.logitBias;
      if (p.fed === 0) p.logprobs = [null];
      for (let i = 0; i < chunk.length && p.fed + i + 1 < prompt.length; i++) {
        p.logprobs.push(logSoftmaxAt(out.logits.subarray(i * vocab, (i + 1) * vocab), prompt[p.fed + i + 1], bias));
      }
    }
    p.fed += chunk.length;
    this.counters.fedPromptTokens += chunk.length;
    if (p.fed < prompt.length || p.sampled) return;
    p.sampled = true;
    const logits = out.logits.subarray(out.logits.length - vocab), probs = out.probs.subarray(out.probs.length - vocab);
    for (const seq of p.choices) {
      if (seq.params.maxTokens > 0) this.emit(seq, logits, probs);
      else if (!seq.cancelled) {
        seq.cancelled = true;
        seq.channel.close();
      }
    }
  }

  /**
   * Fed prompts hand their cache to their choices that go on: a copy to each while the batch has
   * room, the cache itself to the last. When no room is left and nothing runs that could make some
   * (MAX_BATCH below n), the next choice takes the cache and the prompt is fed again for the rest.
   */
  private startChoices(): void {
    for (const p of [...this.prompts]) {
      if (!p.sampled || p.fed < p.request.prompt.length) continue;
      const rest = p.choices.filter((s) => !s.cancelled && !s.cache);
      for (const [i, seq] of rest.entries()) {
        const lastOne = i === rest.length - 1;
        if (lastOne || this.holding() < this.options.maxBatch) {
          seq.cache = lastOne ? p.cache : p.cache!.prefix(p.cache!.length);
          if (lastOne) p.cache = null;
          this.running.push(seq);
        } else if (this.running.length === 0) {
          seq.cache = p.cache;
          p.cache = null;
          p.fed = 0;
          this.running.push(seq);
          break;
        } else break;
      }
      if (!p.choices.some((s) => !s.cancelled && !s.cache)) this.dropPrompt(p);
    }
  }

  /** Retire what nobody waits for: cancelled sequences and prompts none of whose choices is live. */
  private retire(): void {
    for (const s of this.running) if (s.cancelled) this.release(s.cache);
    this.running = this.running.filter((s) => !s.cancelled);
    for (const p of this.prompts) if (!p.live) this.dropPrompt(p);
  }

  /** The prompt leaves the list; a cache nobody took is kept as the prefix cache (choices that all ended at once). */
  private dropPrompt(p: Prompt): void {
    this.prompts.splice(this.prompts.indexOf(p), 1);
    if (p.cache && p.fed === p.request.prompt.length) this.rememberPrefix(p.cache, p.request.prompt, p.request.cacheScope);
    else this.release(p.cache);
    p.cache = null;
  }

  private release(cache: SequenceCache | null): void {
    if (cache && cache !== this.prefix?.cache) cache.release();
  }

  /** A new cache for the prompt, starting from the prefix cache when it begins the same way. */
  private startCache(p: Prompt): void {
    const { prompt, reusePrefix, cacheScope } = p.request;
    let reuse = 0;
    const c = this.prefix;
    if (this.options.prefixCache && c && c.scope === cacheScope && reusePrefix !== false && p.logprobsDone) {
      const limit = Math.min(c.cache.length, prompt.length - 1);
      while (reuse < limit && prompt[reuse] === c.tokens[reuse]) reuse++;
    }
    p.cache = reuse > 0 ? c!.cache.prefix(reuse) : this.decoder.newCache();
    p.fed = reuse;
    if (!p.counted) {
      p.counted = true;
      this.counters.promptTokens += prompt.length;
      this.counters.reusedPromptTokens += reuse;
    }
  }

  /** Sample the next token for a sequence and hand it to its consumer; a finished sequence leaves. */
  private emit(seq: Sequence, logits: Float32Array, probs: Float32Array): void {
    if (seq.cancelled) return;
    const { params } = seq;
    const prompt = seq.prompt.request.prompt;
    const constraint = params.constraint;
    const picked = sample(logits, seq.counts, params.sampling, seq.rng, probs, constraint?.mask(params.maxTokens - seq.generated.length));
    constraint?.advance(picked.token);
    seq.generated.push(picked.token);
    this.counters.generatedTokens++;
    seq.counts.set(picked.token, (seq.counts.get(picked.token) ?? 0) + 1);
    const stop = params.stopTokens.has(picked.token);
    // The cache holds the prompt and every generated token but this one.
    const atLimit = seq.generated.length >= params.maxTokens || prompt.length + seq.generated.length >= this.maxLength;
    const finish = stop ? "stop" : atLimit ? "length" : null;
    seq.channel.push({ ...picked, finish });
    if (finish) {
      seq.cancelled = true;
      seq.channel.close();
      if (seq.cache) this.rememberPrefix(seq.cache, [...prompt, ...seq.generated], seq.prompt.request.cacheScope);
      seq.cache = null;
    } else {
      seq.pending = [picked.token, ...this.jumpForward(seq)];
    }
  }

  /**
   * The tokens the constraint forces after the one just sampled, emitted now and fed with it in the
   * next step (one row of several tokens) instead of a decode step each. Not when log-probabilities
   * are asked for (each token then needs its own logits); never the last token the budget allows.
   */
  private jumpForward(seq: Sequence): number[] {
    const { constraint, sampling, maxTokens } = seq.params;
    if (!constraint?.forced || sampling.logprobs !== null) return [];
    const room = Math.min(maxTokens, this.maxLength - seq.prompt.request.prompt.length) - seq.generated.length - 1;
    const forced = room > 0 ? constraint.forced().slice(0, room) : [];
    for (const token of forced) {
      constraint.advance(token);
      seq.generated.push(token);
      this.counters.generatedTokens++;
      seq.counts.set(token, (seq.counts.get(token) ?? 0) + 1);
      seq.channel.push({ token, logprob: NaN, top: [], finish: null });
    }
    return forced;
  }

  /** Keep a finished cache for a prompt that starts the same way (the previous one is given back). */
  private rememberPrefix(cache: SequenceCache, tokens: number[], scope: string | undefined): void {
    if (!this.options.prefixCache) return void cache.release();
    if (this.prefix && this.prefix.cache !== cache) this.prefix.cache.release();
    this.prefix = { cache, tokens: tokens.slice(0, cache.length), scope };
  }
}
