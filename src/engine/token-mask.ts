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

/** The vocabulary as a byte trie, built once per model. */
export class TokenTrie {
  readonly root: TrieNode = { children: new Map(), tokens: [] };

  constructor(readonly vocabSize: number, bytesOf: (id: number) => Uint8Array, readonly eosId: number | undefined, skip: (id: number) => boolean) {
    for (let id = 0; id < vocabSize; id++) {
      if (skip(id)) continue;
      const bytes = bytesOf(id);
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

/** One sequence's constraint: JSON, an object at the top level. */
export class JsonConstraint {
  private state: JsonState = JSON_START;
  private static readonly cache = new WeakMap<TokenTrie, Map<string, Uint8Array>>();

  constructor(private readonly trie: TokenTrie, private readonly bytesOf: (id: number) => Uint8Array) {}

  /** 1 for each token allowed next; once the JSON is complete, only the end-of-text token. */
  mask(): Uint8Array {
    let cache = JsonConstraint.cache.get(this.trie);
    if (!cache) JsonConstraint.cache.set(this.trie, (cache = new Map()));
    const key = stateKey(this.state);
    let mask = cache.get(key);
    if (!mask) {
      mask = new Uint8Array(this.trie.vocabSize);
      if (isComplete(this.state)) {
        if (this.trie.eosId !== undefined) mask[this.trie.eosId] = 1;
      } else {
        const walk = (node: TrieNode, s: JsonState) => {
          for (const [b, child] of node.children) {
            const next = step(s, b);
            if (!next) continue;
            for (const t of child.tokens) mask![t] = 1;
            walk(child, next);
          }
        };
        walk(this.trie.root, this.state);
      }
      if (cache.size >= MASK_CACHE) cache.delete(cache.keys().next().value!);
      cache.set(key, mask);
    }
    return mask;
  }

  /** Follow the sampled token (it was allowed by mask()). */
  advance(token: number): void {
    if (token === this.trie.eosId) return;
    for (const b of this.bytesOf(token)) {
      const next = step(this.state, b);
      if (!next) throw new Error(`token ${token} breaks the JSON grammar`);
      this.state = next;
    }
  }

  get complete(): boolean {
    return isComplete(this.state);
  }
}
