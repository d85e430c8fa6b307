// API keys and their limits: which key a bearer token is (compared in constant time), and per key
// a cap on concurrent generation requests and a token bucket of generated tokens per minute. The
// state lives in this process (on Workers: in this isolate; Cloudflare's rate-limiting binding is
// the limit shared between isolates, app.ts).

export interface ApiKey {
  /** Shown in /metrics and the access log; the key itself never is. */
  name: string;
  key: string;
  /** Generation requests running at once; undefined: unlimited. */
  concurrency?: number;
  /** Generated tokens per minute; undefined: unlimited. */
  tokensPerMinute?: number;
}

const digest = async (text: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));

/**
 * Finds the key a token is. Both sides are compared as SHA-256 digests, every key every time, with
 * no early exit: the time taken says nothing about how much of a key a guess got right, nor which.
 */
export class KeyRing {
  private readonly digests: Promise<Uint8Array[]>;
  constructor(readonly keys: ApiKey[]) {
    this.digests = Promise.all(keys.map((k) => digest(k.key)));
  }

  async find(token: string): Promise<ApiKey | undefined> {
    const given = await digest(token);
    let found = -1;
    for (const [i, d] of (await this.digests).entries()) {
      let diff = 0;
      for (let j = 0; j < d.length; j++) diff |= d[j] ^ given[j];
      found = diff === 0 ? i : found;
    }
    return this.keys[found];
  }
}

/** A request refused by a key's limits: the message for the client and when to come back. */
export interface Refusal {
  message: string;
  retryAfterSeconds: number;
}

/**
 * One key's limits. A generation request is admitted while fewer than `concurrency` run and the
 * token bucket holds at least one token; its tokens are charged as they are generated, so one long
 * reply may take the bucket below zero, and the key's next request waits until it has refilled.
 * The bucket starts full (a minute's tokens) and refills continuously.
 */
export class KeyLimiter {
  private running = 0;
  private level: number;
  private at: number;

  constructor(readonly spec: ApiKey, private readonly now: () => number = () => Date.now()) {
    this.level = spec.tokensPerMinute ?? 0;
    this.at = now();
  }

  /** Admit one request (then call `release` exactly once when it ends), or say why not. */
  admit(): { release: () => void } | Refusal {
    const { concurrency, tokensPerMinute: tpm, name } = this.spec;
    if (concurrency !== undefined && this.running >= concurrency) {
      return { message: `Rate limit reached for key ${name} on concurrent requests: limit ${concurrency}. Please try again when one of them has finished.`, retryAfterSeconds: 1 };
    }
    if (tpm !== undefined) {
      this.refill();
      if (this.level < 1) {
        const seconds = Math.ceil(((1 - this.level) * 60) / tpm);
        return { message: `Rate limit reached for key ${name} on generated tokens per min (TPM): limit ${tpm}. Please try again in ${seconds}s.`, retryAfterSeconds: seconds };
      }
    }
    this.running++;
    let released = false;
    return {
      release: () => {
        if (!released) this.running--;
        released = true;
      },
    };
  }

  /** Generated tokens, as they come. */
  charge(tokens: number): void {
    if (this.spec.tokensPerMinute === undefined) return;
    this.refill();
    this.level -= tokens;
  }

  private refill(): void {
    const tpm = this.spec.tokensPerMinute!;
    const now = this.now();
    this.level = Math.min(tpm, this.level + ((now - this.at) * tpm) / 60_000);
    this.at = now;
  }
}

/**
 * `API_KEYS`: entries `name:key[:concurrency=N][:tpm=N]`, separated by commas or newlines (a
 * file's lines); blank lines and lines starting with # are skipped. Errors name the entry by its
 * position and name, never by its key.
 */
export function parseApiKeys(text: string, source = "API_KEYS"): ApiKey[] {
  const keys: ApiKey[] = [];
  const entries = text.split(/[,\n]/).map((e) => e.trim()).filter((e) => e && !e.startsWith("#"));
  for (const [i, entry] of entries.entries()) {
    const [name, key, ...options] = entry.split(":");
    const where = `${source} entry ${i + 1}${/^[A-Za-z0-9_.-]{1,64}$/.test(name) ? ` (${name})` : ""}`;
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error(`${where}: a key's name is 1-64 letters, digits, _ . or -, followed by :key`);
    if (!key || /\s/.test(key)) throw new Error(`${where}: name:key, the key without spaces`);
    const spec: ApiKey = { name, key };
    for (const option of options) {
      const m = /^(concurrency|tpm)=(\d+)$/.exec(option);
      if (!m || Number(m[2]) < 1) throw new Error(`${where}: options are concurrency=N and tpm=N (N ≥ 1)`);
      if (m[1] === "concurrency") spec.concurrency = Number(m[2]);
      else spec.tokensPerMinute = Number(m[2]);
    }
    if (keys.some((k) => k.name === name)) throw new Error(`${where}: the name ${name} is used twice`);
    if (keys.some((k) => k.key === key)) throw new Error(`${where}: the same key as another entry`);
    keys.push(spec);
  }
  return keys;
}
