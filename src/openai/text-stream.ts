// Token ids → text deltas with OpenAI's stop-string semantics: a stop string is never emitted, not
// even its beginning (text that could start a stop string is held back until it can't), and
// multi-byte characters are never split (the tokenizer's streaming decoder holds partial bytes).
import type { StreamDecoder } from "../tokenizer/stream-decoder.js";

export class StopTextStream {
  private held = "";
  stopped = false;

  constructor(private readonly decoder: StreamDecoder, private readonly stops: readonly string[]) {}

  /** Feed one token; returns the text that is now safe to emit. Sets `stopped` once a stop string appears. */
  push(token: number): string {
    if (this.stopped) return "";
    return this.release(this.held + this.decoder.push(token));
  }

  /** End of generation: emit whatever is held back. */
  flush(): string {
    if (this.stopped) return "";
    const text = this.held + this.decoder.flush();
    this.held = "";
    return text;
  }

  private release(text: string): string {
    let cut = -1;
    for (const s of this.stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      this.held = "";
      return text.slice(0, cut);
    }
    const hold = longestStopPrefixSuffix(text, this.stops);
    this.held = text.slice(text.length - hold);
    return text.slice(0, text.length - hold);
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
export function longestStopPrefixSuffix(text: string, stops: readonly string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}
