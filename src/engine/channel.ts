// A one-consumer async queue: the engine pushes tokens, the HTTP handler iterates them. Breaking
// out of the loop (or an abort) calls onCancel, which frees the sequence at the next engine step.

export class Channel<T> implements AsyncIterableIterator<T> {
  private readonly buffer: T[] = [];
  private waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;
  private closed = false;
  private error: unknown = null;

  constructor(private readonly onCancel: () => void) {}

  push(value: T): void {
    if (this.closed) return;
    if (this.waiting) {
      this.waiting.resolve({ value, done: false });
      this.waiting = null;
    } else this.buffer.push(value);
  }

  close(error?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    if (error !== undefined) this.error = error;
    if (this.waiting) {
      if (this.error !== null) this.waiting.reject(this.error);
      else this.waiting.resolve({ value: undefined, done: true });
      this.waiting = null;
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.buffer.length) return Promise.resolve({ value: this.buffer.shift()!, done: false });
    if (this.closed) {
      return this.error !== null ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.closed) this.onCancel();
    this.close();
    this.buffer.length = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
