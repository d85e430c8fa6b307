// The scheduler: a bounded queue in front of a continuous batch. Each iteration runs one decode step
// for every running sequence, then feeds one waiting sequence the next chunk of its prompt (chunked
// prefill, as vLLM and llama-server do). While sequences are running, the chunk is sized so that
// prefill takes three quarters of the time the decode step did: a flood of long prompts slows the
// running streams to about half speed instead of stalling them. The waiting sequence is chosen round-robin between
// clients, so one client's many requests cannot starve another's. Sequences join the batch after
// their prompt and leave it (finished, cancelled, disconnected) between steps.
import { Channel } from "./channel.js";
import type { Decoder, SequenceCache } from "./decoder.js";
import { createRng, logSoftmaxAt, probsTemperature, sample, type Sampled, type SamplingParams } from "./sampler.js";

/** Largest prompt chunk fed in one step (when nothing else is running). */
const MAX_CHUNK = 256;
/**
 * Prefill time per step relative to the decode step before it, while streams run: 3/4 leaves running
 * streams a little over half their speed under a flood of prompts (the bench's victim test), also
 * paying for the flood's responses, which are built on the same event loop.
 */
const PREFILL_SHARE = 0.75;
/** Largest chunk when every position's logits come back (echo + logprobs): 64 × vocabulary floats × 2 per step. */
const MAX_CHUNK_ALL_LOGITS = 64;

export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super("the server is busy: too many requests are queued");
  }
}

export interface GenerateRequest {
  prompt: number[];
  maxTokens: number;
  sampling: SamplingParams;
  stopTokens: ReadonlySet<number>;
  /** Also compute the log-probability of every prompt token (for echo + logprobs). */
  promptLogprobs?: boolean;
  /**
   * Allow reusing a cached prompt prefix. Off for seeded requests: onnxruntime-web's int8 graph
   * quantizes activations per run, so a prompt split differently gives slightly different logits.
   */
  reusePrefix?: boolean;
  signal?: AbortSignal;
  /** Who asked (the request's `user`, else its address): prefill turns alternate between clients. */
  client?: string;
  /**
   * The prefix cache is reused only within one scope (address and API key): a cache shared across
   * clients would let one client read another's prompt, token by token, through timing.
   */
  cacheScope?: string;
  /** The API request this sequence belongs to (its n choices share one): the queue counts requests. */
  group?: object;
  /** Constrained decoding (e.g. JSON mode): which tokens may come next, and following each one drawn. */
  constraint?: { mask(): Uint8Array; advance(token: number): void };
}

export interface GeneratedToken extends Sampled {
  /** "stop" when this token is a stop token (not to be shown), "length" when it is the last allowed. */
  finish: "stop" | "length" | null;
}

export interface EngineOptions {
  maxBatch: number; // sequences holding a KV cache (running, or part-way through their prompt)
  maxQueue: number; // requests waiting for a place in the batch before 429
  prefixCache: boolean;
}

export interface EngineStats {
  queued: number;
  running: number;
  promptTokens: number;
  generatedTokens: number;
  reusedPromptTokens: number;
  steps: number;
}

class Sequence {
  readonly channel: Channel<GeneratedToken>;
  readonly counts = new Map<number, number>();
  readonly rng: () => number;
  cache: SequenceCache | null = null;
  /** Prompt tokens in the cache so far (reused or fed). */
  fed = 0;
  pending: number[] = []; // tokens to feed next
  readonly generated: number[] = [];
  cancelled = false;
  promptLogprobs: (number | null)[] = [];

  constructor(readonly request: GenerateRequest) {
    this.rng = createRng(request.sampling.seed);
    this.channel = new Channel(() => (this.cancelled = true));
  }

  get group(): object {
    return this.request.group ?? this.request;
  }
}

export interface Generation extends AsyncIterable<GeneratedToken> {
  /** Filled once the prompt has been processed (first token), when promptLogprobs was asked for. */
  readonly promptLogprobs: (number | null)[];
}

export class Engine {
  /** Sequences whose prompt is not yet all in their cache, oldest first; those with a cache are part-way. */
  private waiting: Sequence[] = [];
  private running: Sequence[] = [];
  private loop: Promise<void> | null = null;
  /** The cache of the last finished sequence, for a prompt that starts the same way. */
  private prefix: { cache: SequenceCache; tokens: number[]; scope: string | undefined } | null = null;
  private lastClient: string | undefined;
  /** Recent prefill cost (ms per prompt token), to size chunks. */
  private msPerPromptToken = 1;
  private readonly counters = { promptTokens: 0, generatedTokens: 0, reusedPromptTokens: 0, steps: 0 };

  constructor(readonly decoder: Decoder, readonly options: EngineOptions) {}

  /** Resolves when no work is left (Workers: keep the request that joined the loop alive until then). */
  whenIdle(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  get maxLength(): number {
    return this.decoder.shape.maxLength;
  }

  /** Queue a generation; throws QueueFullError at once when the queue is full. */
  generate(request: GenerateRequest): Generation {
    const seq = new Sequence(request);
    const queued = new Set(this.waiting.filter((s) => !s.cancelled && !s.cache).map((s) => s.group));
    if (!queued.has(seq.group) && queued.size >= this.options.maxQueue) throw new QueueFullError(1);
    if (request.signal?.aborted) seq.channel.return();
    request.signal?.addEventListener("abort", () => seq.channel.return(), { once: true });
    this.waiting.push(seq);
    this.loop ??= this.runLoop().finally(() => (this.loop = null));
    return {
      [Symbol.asyncIterator]: () => seq.channel,
      get promptLogprobs() {
        return seq.promptLogprobs;
      },
    };
  }

  get stats(): EngineStats {
    const live = (seqs: Sequence[]) => seqs.filter((s) => !s.cancelled);
    return {
      queued: new Set(live(this.waiting).filter((s) => !s.cache).map((s) => s.group)).size,
      running: live(this.running).length + live(this.waiting).filter((s) => s.cache).length,
      ...this.counters,
    };
  }

  /**
   * End every generation now (shutdown): each consumer sees its stream end after the tokens it has;
   * requests queued later still run.
   */
  stop(): void {
    for (const seq of [...this.waiting, ...this.running]) {
      if (seq.cancelled) continue;
      seq.cancelled = true;
      seq.channel.close();
    }
  }

  private async runLoop(): Promise<void> {
    // Yield once so requests arriving in the same tick are batched from the first step.
    await new Promise((r) => setTimeout(r, 0));
    while (this.waiting.length || this.running.length) {
      this.running = this.retire(this.running);
      this.waiting = this.retire(this.waiting);
      let decodeMs = 0;
      if (this.running.length) {
        const start = performance.now();
        await this.guard(this.running, () => this.decodeStep(this.running));
        decodeMs = performance.now() - start;
        this.running = this.retire(this.running);
      }
      const seq = this.nextToPrefill();
      if (seq) {
        // Three quarters of the decode step's time, at least one token; up to MAX_CHUNK when alone.
        const most = seq.request.promptLogprobs ? MAX_CHUNK_ALL_LOGITS : MAX_CHUNK;
        const budget = this.running.length ? Math.max(1, Math.min(most, Math.floor((PREFILL_SHARE * decodeMs) / this.msPerPromptToken))) : most;
        await this.guard([seq], () => this.prefillChunk(seq, budget));
      }
      // Let HTTP writes and new requests in between steps.
      await new Promise((r) => (typeof setImmediate === "function" ? setImmediate(r) : setTimeout(r, 0)));
    }
  }

  /**
   * The waiting sequence to feed next: one already part-way, or a new one while the batch has room;
   * the oldest of a client other than the one served last, else the oldest.
   */
  private nextToPrefill(): Sequence | null {
    const holding = this.running.length + this.waiting.filter((s) => s.cache).length;
    const ready = this.waiting.filter((s) => !s.cancelled && (s.cache || holding < this.options.maxBatch));
    const seq = ready.find((s) => s.request.client !== this.lastClient) ?? ready[0] ?? null;
    if (seq) this.lastClient = seq.request.client;
    return seq;
  }

  /** The sequences still live; the others' caches go back to the decoder. */
  private retire(seqs: Sequence[]): Sequence[] {
    for (const s of seqs) if (s.cancelled) this.release(s);
    return seqs.filter((s) => !s.cancelled);
  }

  private release(seq: Sequence): void {
    if (seq.cache && seq.cache !== this.prefix?.cache) seq.cache.release();
    seq.cache = null;
  }

  /** A failure inside the model ends the affected sequences with the error; the engine goes on. */
  private async guard(seqs: Sequence[], work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      for (const s of seqs) {
        s.cancelled = true;
        s.channel.close(err);
      }
    }
  }

  /** Feed the next `budget` prompt tokens; after the last, sample the first token and join the batch. */
  private async prefillChunk(seq: Sequence, budget: number): Promise<void> {
    const { prompt, promptLogprobs, sampling } = seq.request;
    if (!seq.cache) this.startCache(seq);
    const chunk = prompt.slice(seq.fed, seq.fed + budget);
    const start = performance.now();
    const [out] = await this.decoder.step([{ cache: seq.cache!, tokens: chunk, temperature: probsTemperature(sampling) }], promptLogprobs ? "all" : "last");
    this.msPerPromptToken = 0.7 * this.msPerPromptToken + 0.3 * ((performance.now() - start) / chunk.length);
    const vocab = this.decoder.shape.vocabSize;
    if (promptLogprobs) {
      // Row i gives the distribution of the token after chunk[i].
      if (seq.fed === 0) seq.promptLogprobs = [null];
      for (let i = 0; i < chunk.length && seq.fed + i + 1 < prompt.length; i++) {
        seq.promptLogprobs.push(logSoftmaxAt(out.logits.subarray(i * vocab, (i + 1) * vocab), prompt[seq.fed + i + 1]));
      }
    }
    seq.fed += chunk.length;
    if (seq.fed < prompt.length) return;
    this.waiting.splice(this.waiting.indexOf(seq), 1);
    this.emit(seq, out.logits.subarray(out.logits.length - vocab), out.probs.subarray(out.probs.length - vocab));
    if (seq.cancelled) this.release(seq);
    else this.running.push(seq);
  }

  /** A new cache for the sequence, starting from the prefix cache when its prompt begins the same way. */
  private startCache(seq: Sequence): void {
    const { prompt, reusePrefix, promptLogprobs, cacheScope } = seq.request;
    let reuse = 0;
    const p = this.prefix;
    if (this.options.prefixCache && p && p.scope === cacheScope && reusePrefix !== false && !promptLogprobs) {
      const limit = Math.min(p.cache.length, prompt.length - 1);
      while (reuse < limit && prompt[reuse] === p.tokens[reuse]) reuse++;
    }
    seq.cache = reuse > 0 ? p!.cache.prefix(reuse) : this.decoder.newCache();
    seq.fed = reuse;
    this.counters.promptTokens += prompt.length;
    this.counters.reusedPromptTokens += reuse;
  }

  private async decodeStep(seqs: Sequence[]): Promise<void> {
    const outs = await this.decoder.step(seqs.map((s) => ({ cache: s.cache!, tokens: s.pending, temperature: probsTemperature(s.request.sampling) })));
    this.counters.steps++;
    seqs.forEach((s, i) => this.emit(s, outs[i].logits, outs[i].probs));
  }

  /** Sample the next token for a sequence and hand it to its consumer; retire finished sequences. */
  private emit(seq: Sequence, logits: Float32Array, probs: Float32Array): void {
    if (seq.cancelled) return;
    const constraint = seq.request.constraint;
    const picked = sample(logits, seq.counts, seq.request.sampling, seq.rng, probs, constraint?.mask());
    constraint?.advance(picked.token);
    seq.generated.push(picked.token);
    this.counters.generatedTokens++;
    seq.counts.set(picked.token, (seq.counts.get(picked.token) ?? 0) + 1);
    const stop = seq.request.stopTokens.has(picked.token);
    const atLimit = seq.generated.length >= seq.request.maxTokens || seq.cache!.length + 1 >= this.maxLength;
    const finish = stop ? "stop" : atLimit ? "length" : null;
    seq.channel.push({ ...picked, finish });
    if (finish) {
      seq.cancelled = true;
      seq.channel.close();
      this.rememberPrefix(seq);
    } else {
      seq.pending = [picked.token];
    }
  }

  private rememberPrefix(seq: Sequence): void {
    if (!this.options.prefixCache) return;
    const cache = seq.cache!;
    if (this.prefix && this.prefix.cache !== cache) this.prefix.cache.release();
    // The cache holds the prompt and every generated token but the last (never fed back).
    this.prefix = { cache, tokens: [...seq.request.prompt, ...seq.generated].slice(0, cache.length), scope: seq.request.cacheScope };
  }
}
