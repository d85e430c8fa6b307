// Which tokens may come next under a byte-level grammar (json-grammar.ts): a trie of the vocabulary's
// bytes is walked from the current grammar state, pruning every branch whose prefix the grammar
// refuses, so tokens that share a prefix share the work. A token may span several grammar symbols
// and end mid-string or mid-character; only bytes matter. Masks are cached per grammar state (inside
// a string, say, the mask is always the same).
import { isComplete, JSON_START, stateKey, step, type JsonState } from "./json-grammar.js";

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

/** A byte-level grammar: a start state, one byte at a time, and whether the text so far is complete. */
export interface Grammar<S> {
  start: S;
  step(state: S, byte: number): S | null;
  /** Equal keys, equal futures (masks are cached by key). */
  key(state: S): string;
  complete(state: S): boolean;
}

/** Plain JSON, an object at the top level (response_format json_object). */
export const JSON_OBJECT: Grammar<JsonState> = { start: JSON_START, step, key: stateKey, complete: isComplete };

/** One sequence's constraint: the tokens whose bytes continue the grammar; end-of-text once complete. */
export class GrammarConstraint<S> {
  private state: S;
  private static readonly caches = new WeakMap<object, WeakMap<TokenTrie, Map<string, Uint8Array>>>();

  constructor(private readonly grammar: Grammar<S>, private readonly trie: TokenTrie) {
    this.state = grammar.start;
  }

  mask(): Uint8Array {
    let byTrie = GrammarConstraint.caches.get(this.grammar);
    if (!byTrie) GrammarConstraint.caches.set(this.grammar, (byTrie = new WeakMap()));
    let cache = byTrie.get(this.trie);
    if (!cache) byTrie.set(this.trie, (cache = new Map()));
    const key = this.grammar.key(this.state);
    let mask = cache.get(key);
    if (!mask) {
      const m = (mask = new Uint8Array(this.trie.vocabSize));
      if (this.grammar.complete(this.state) && this.trie.eosId !== undefined) m[this.trie.eosId] = 1;
      const walk = (node: TrieNode, s: S) => {
        for (const [b, child] of node.children) {
          const next = this.grammar.step(s, b);
          if (next === null) continue;
          for (const t of child.tokens) m[t] = 1;
          walk(child, next);
        }
      };
      walk(this.trie.root, this.state);
      if (cache.size >= MASK_CACHE) cache.delete(cache.keys().next().value!);
      cache.set(key, m);
    }
    return mask;
  }

  /** Follow the sampled token (it was allowed by mask()). */
  advance(token: number): void {
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
}

/** JSON mode: any JSON object. */
export class JsonConstraint extends GrammarConstraint<JsonState> {
  constructor(trie: TokenTrie) {
    super(JSON_OBJECT, trie);
  }
}
