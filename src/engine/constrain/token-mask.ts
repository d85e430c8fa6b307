// Which tokens may come next under a byte-level grammar (json-grammar.ts, json-schema.ts): a trie of
// the vocabulary's bytes is walked from the current grammar state, pruning every branch whose prefix
// the grammar refuses, so tokens that share a prefix share the work. A token may span several grammar
// symbols and end mid-string or mid-character; only bytes matter. Masks are cached per grammar state
// (inside a string, say, the mask is always the same).
//
// Budget: every grammar knows the fewest bytes from a state to a complete text (its distance), and
// every single byte is a token of a byte-level BPE vocabulary, so a state at distance d can always be
// completed in d tokens. A token is allowed only when, after it, the tokens left (less one for the
// end-of-text) still cover the distance: the reply then always ends as a complete text with
// end-of-text inside max_tokens, and until the budget gets tight the mask is the cached one.
//
// Jump-forward: where the grammar allows exactly one next byte, those bytes are forced; forced()
// gives them as tokens for the engine to append without a decode step each.
import { distance, isComplete, JSON_START, stateKey, step, type JsonState } from "./json-grammar.js";

interface TrieNode {
  children: Map<number, TrieNode>;
  tokens: number[];
}

/** What the trie needs of a tokenizer (the Tokenizer class has it). */
export interface Vocabulary {
  readonly vocabSize: number;
  readonly eosId: number | undefined;
  tokenBytes(id: number): Uint8Array;
  isSpecial(id: number): boolean;
}

/** The vocabulary as a byte trie (special tokens left out), built once per model. */
export class TokenTrie {
  readonly root: TrieNode = { children: new Map(), tokens: [] };
  readonly vocabSize: number;
  readonly eosId: number | undefined;

  constructor(readonly vocab: Vocabulary) {
    this.vocabSize = vocab.vocabSize;
    this.eosId = vocab.eosId;
    for (let id = 0; id < this.vocabSize; id++) {
      if (vocab.isSpecial(id)) continue;
      const bytes = vocab.tokenBytes(id);
      if (bytes.length === 0) continue;
      let node = this.root;
      for (const b of bytes) {
        let next = node.children.get(b);
        if (!next) node.children.set(b, (next = { children: new Map(), tokens: [] }));
        node = next;
      }
      node.tokens.push(id);
    }
  }
}

const MASK_CACHE = 256;
/** Longest forced run looked at in one go (a long const or enum value continues on the next call). */
const MAX_FORCED = 256;
/** Distances are stored clamped to this (no budget comes near it). */
const FAR = 0xffff;

/** A byte-level grammar: a start state, one byte at a time, and whether the text so far is complete. */
export interface Grammar<S> {
  start: S;
  step(state: S, byte: number): S | null;
  /** Equal keys, equal futures (masks are cached by key). */
  key(state: S): string;
  complete(state: S): boolean;
  /** The fewest bytes from this state to a complete text (Infinity: none). */
  distance(state: S): number;
}

/** Plain JSON, an object at the top level (response_format json_object). */
export const JSON_OBJECT: Grammar<JsonState> = { start: JSON_START, step, key: stateKey, complete: isComplete, distance };

/** What depends only on the grammar state: cached. */
interface Entry {
  /** 1 for each token that continues the grammar (end-of-text once complete). */
  mask: Uint8Array;
  /** For each allowed token, the distance after it (clamped to FAR). */
  after: Uint16Array;
  /** The largest of `after` over the allowed tokens: budgets from this one up change nothing. */
  worst: number;
  /** The forced tokens from this state, once asked for. */
  forced?: number[];
}

/** The fewest bytes to a complete text from the grammar's start: a reply needs this many tokens, plus end-of-text. */
export function shortestBytes<S>(grammar: Grammar<S>): number {
  return grammar.distance(grammar.start);
}

/**
 * One sequence's constraint: the tokens whose bytes continue the grammar and leave room to complete
 * it within the budget; end-of-text once complete.
 */
export class GrammarConstraint<S> {
  private state: S;
  /** Tokens followed so far (sampled or forced): the budget's spent part. */
  private used = 0;
  private static readonly caches = new WeakMap<object, WeakMap<TokenTrie, Map<string, Entry>>>();

  /** `maxTokens`: the reply's budget, end-of-text included (the engine's maxTokens); none by default. */
  constructor(private readonly grammar: Grammar<S>, private readonly trie: TokenTrie, private readonly maxTokens = Infinity) {
    this.state = grammar.start;
  }

  /** The allowed tokens, with `tokensLeft` tokens (this one included) left in the budget. */
  mask(tokensLeft = this.maxTokens - this.used): Uint8Array {
    const e = this.entry();
    // After this token, tokensLeft − 1 remain, and the last of them is the end-of-text.
    const room = Math.min(tokensLeft - 2, FAR - 1);
    if (room >= e.worst) return e.mask;
    const eos = this.trie.eosId;
    const m = new Uint8Array(e.mask.length);
    let any = false, best = Infinity;
    for (let t = 0; t < m.length; t++) {
      if (!e.mask[t]) continue;
      if (t === eos || e.after[t] <= room) m[t] = 1, any = true;
      best = Math.min(best, e.after[t]);
    }
    // A budget below the distance (no request gets here: structured.ts refuses such a max_tokens) or a
    // vocabulary without some single byte: the tokens that get closest, a cut reply rather than none.
    if (!any) for (let t = 0; t < m.length; t++) if (e.mask[t] && e.after[t] === best) m[t] = 1;
    return m;
  }

  /**
   * The tokens for the bytes the grammar forces from here (where exactly one byte may come next, and
   * the text is not complete), or [] when the next byte is a choice. The bytes are split greedily,
   * longest token first, through the trie: every token is one the mask allows at its point, so the
   * model could have produced the same sequence (a BPE tokenizer mostly splits such runs of
   * punctuation and names the same way). Does not advance: the caller advances through them.
   */
  forced(): number[] {
    const e = this.entry();
    if (e.forced) return e.forced;
    const bytes: number[] = [];
    let s = this.state;
    while (bytes.length < MAX_FORCED && !this.grammar.complete(s)) {
      let only = -1, next: S | null = null;
      for (let b = 0; b < 256; b++) {
        const n = this.grammar.step(s, b);
        if (n === null || !Number.isFinite(this.grammar.distance(n))) continue;
        if (only >= 0) {
          only = -2;
          break;
        }
        only = b, next = n;
      }
      if (only < 0) break;
      bytes.push(only);
      s = next!;
    }
    const tokens: number[] = [];
    for (let at = 0; at < bytes.length;) {
      let node = this.trie.root, token = -1, length = 0;
      for (let i = at; i < bytes.length; i++) {
        const child = node.children.get(bytes[i]);
        if (!child) break;
        node = child;
        if (node.tokens.length) token = node.tokens[0], length = i - at + 1;
      }
      if (token < 0) break; // a byte with no token of its own: the model samples from here
      tokens.push(token);
      at += length;
    }
    return (e.forced = tokens);
  }

  /** Follow a token (sampled, allowed by mask(), or forced). */
  advance(token: number): void {
    this.used++;
    if (token === this.trie.eosId) return;
    for (const b of this.trie.vocab.tokenBytes(token)) {
      const next = this.grammar.step(this.state, b);
      if (next === null) throw new Error(`token ${token} breaks the grammar`);
      this.state = next;
    }
  }

  get complete(): boolean {
    return this.grammar.complete(this.state);
  }

  /** The fewest bytes from here to a complete text. */
  get distance(): number {
    return this.grammar.distance(this.state);
  }

  private entry(): Entry {
    let byTrie = GrammarConstraint.caches.get(this.grammar);
    if (!byTrie) GrammarConstraint.caches.set(this.grammar, (byTrie = new WeakMap()));
    let cache = byTrie.get(this.trie);
    if (!cache) byTrie.set(this.trie, (cache = new Map()));
    const key = this.grammar.key(this.state);
    let e = cache.get(key);
    if (!e) {
      const mask = new Uint8Array(this.trie.vocabSize), after = new Uint16Array(this.trie.vocabSize);
      let worst = 0;
      if (this.grammar.complete(this.state) && this.trie.eosId !== undefined) mask[this.trie.eosId] = 1;
      const walk = (node: TrieNode, s: S) => {
        for (const [b, child] of node.children) {
          const next = this.grammar.step(s, b);
          if (next === null) continue;
          const d = this.grammar.distance(next);
          if (!Number.isFinite(d)) continue; // no complete text past this byte
          const clamped = Math.min(d, FAR);
          for (const t of child.tokens) mask[t] = 1, after[t] = clamped;
          if (child.tokens.length && clamped > worst) worst = clamped;
          walk(child, next);
        }
      };
      walk(this.trie.root, this.state);
      e = { mask, after, worst };
      if (cache.size >= MASK_CACHE) cache.delete(cache.keys().next().value!);
      cache.set(key, e);
    }
    return e;
  }
}

/** JSON mode: any JSON object. */
export class JsonConstraint extends GrammarConstraint<JsonState> {
  constructor(trie: TokenTrie, maxTokens?: number) {
    super(JSON_OBJECT, trie, maxTokens);
  }
}
