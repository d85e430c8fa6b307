// The scheduler: a bounded FIFO queue in front of a continuous batch. Every engine step feeds all
// running sequences their next token in one session.run; sequences join (after their own prefill)
// and leave (finished, cancelled, disconnected) between steps.
import { Channel } from "./channel.js";
import type { Decoder, SequenceCache } from "./decoder.js";
import { createRng, logSoftmaxAt, sample, type Sampled, type SamplingParams } from "./sampler.js";

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
   * Allow reusing a cached prompt prefix. Off for seeded requests: int8 graphs quantize activations
   * per run, so a prompt split differently gives slightly different logits.
   */
  reusePrefix?: boolean;
  signal?: AbortSignal;
}

export interface GeneratedToken extends Sampled {
  /** "stop" when this token is a stop token (not to be shown), "length" when it is the last allowed. */
  finish: "stop" | "length" | null;
}

export interface EngineOptions {
  maxBatch: number; // sequences decoded together
  maxQueue: number; // requests waiting beyond the batch before 429
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
  pending: number[] = []; // tokens to feed next
  readonly generated: number[] = [];
  cancelled = false;
  promptLogprobs: (number | null)[] = [];

  constructor(readonly request: GenerateRequest) {
    this.rng = createRng(request.sampling.seed);
    this.channel = new Channel(() => (this.cancelled = true));
  }
}

export interface Generation extends AsyncIterable<GeneratedToken> {
  /** Filled once the prompt has been processed (first token), when promptLogprobs was asked for. */
  readonly promptLogprobs: (number | null)[];
}

export class Engine {
  private readonly waiting: Sequence[] = [];
  private running: Sequence[] = [];
  private loop: Promise<void> | null = null;
  private lastTokens: number[] = [];
  private lastCache: SequenceCache | null = null;
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
    if (this.waiting.length >= this.options.maxQueue) throw new QueueFullError(1);
    const seq = new Sequence(request);
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
    return {
      queued: this.waiting.filter((s) => !s.cancelled).length,
      running: this.running.filter((s) => !s.cancelled).length,
      ...this.counters,
    };
  }

  private async runLoop(): Promise<void> {
    // Yield once so requests arriving in the same tick are batched from the first step.
    await new Promise((r) => setTimeout(r, 0));
    while (this.waiting.length || this.running.length) {
      this.running = this.retire(this.running);
      while (this.running.length < this.options.maxBatch && this.waiting.length) {
        const seq = this.waiting.shift()!;
        if (seq.cancelled) continue;
        await this.guard([seq], () => this.prefill(seq));
        if (!seq.cancelled) this.running.push(seq);
        else this.release(seq);
      }
      this.running = this.retire(this.running);
      if (this.running.length) await this.guard(this.running, () => this.decodeStep(this.running));
      // Let HTTP writes and new requests in between steps.
      await new Promise((r) => (typeof setImmediate === "function" ? setImmediate(r) : setTimeout(r, 0)));
    }
  }

  /** The sequences still running; the others' caches go back to the decoder. */
  private retire(seqs: Sequence[]): Sequence[] {
    for (const s of seqs) if (s.cancelled) this.release(s);
    return seqs.filter((s) => !s.cancelled);
  }

  private release(seq: Sequence): void {
    if (seq.cache && seq.cache !== this.lastCache) seq.cache.release();
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

  private async prefill(seq: Sequence): Promise<void> {
    const prompt = seq.request.prompt;
    let reuse = 0;
    if (this.options.prefixCache && this.lastCache && seq.request.reusePrefix !== false && !seq.request.promptLogprobs) {
      const limit = Math.min(this.lastCache.length, prompt.length - 1);
      while (reuse < limit && prompt[reuse] === this.lastTokens[reuse]) reuse++;
    }
    seq.cache = reuse > 0 ? this.lastCache!.prefix(reuse) : this.decoder.newCache();
    this.counters.promptTokens += prompt.length;
    this.counters.reusedPromptTokens += reuse;
    const [out] = await this.decoder.step([{ cache: seq.cache!, tokens: prompt.slice(reuse), temperature: seq.request.sampling.temperature }],
      seq.request.promptLogprobs ? "all" : "last");
    const logits = out.logits;
    const vocab = this.decoder.shape.vocabSize;
    if (seq.request.promptLogprobs) {
      seq.promptLogprobs = prompt.map((t, i) => (i === 0 ? null : logSoftmaxAt(logits.subarray((i - 1) * vocab, i * vocab), t)));
    }
    this.emit(seq, logits.subarray(logits.length - vocab), out.probs.subarray(out.probs.length - vocab));
  }

  private async decodeStep(seqs: Sequence[]): Promise<void> {
    const outs = await this.decoder.step(seqs.map((s) => ({ cache: s.cache!, tokens: s.pending, temperature: s.request.sampling.temperature })));
    this.counters.steps++;
    seqs.forEach((s, i) => this.emit(s, outs[i].logits, outs[i].probs));
  }

  /** Sample the next token for a sequence and hand it to its consumer; retire finished sequences. */
  private emit(seq: Sequence, logits: Float32Array, probs: Float32Array): void {
    if (seq.cancelled) return;
    const picked = sample(logits, seq.counts, seq.request.sampling, seq.rng, probs);
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
    if (this.lastCache && this.lastCache !== cache) this.lastCache.release();
    this.lastCache = cache;
    // The cache holds the prompt and every generated token but the last (never fed back).
    this.lastTokens = [...seq.request.prompt, ...seq.generated].slice(0, cache.length);
  }
}
