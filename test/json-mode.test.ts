// JSON mode (response_format json_object): the byte-level grammar against JSON.parse, the token mask
// on a real byte-level BPE vocabulary, and generations that always parse (issue 17).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { distance, isComplete, JSON_START, step, type JsonState } from "../src/engine/constrain/json-grammar.js";
import { JsonConstraint, TokenTrie } from "../src/engine/constrain/token-mask.js";
import { Engine } from "../src/engine/engine.js";
import { DEFAULT_SAMPLING } from "../src/engine/sampler.js";
import { loadTokenizer } from "../scripts/tokenizer/files.js";
import { FIXTURE_DIR, simdDecoder } from "./helpers/fixture.js";

const bytes = (s: string) => new TextEncoder().encode(s);
function feed(text: string): JsonState | null {
  let s: JsonState | null = JSON_START;
  for (const b of bytes(text)) if (!(s = step(s!, b))) return null;
  return s;
}

describe("the JSON grammar", () => {
  it("accepts every JSON object, whatever it holds", () => {
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
      const text = JSON.stringify(obj);
      const s = feed(text);
      expect(s && isComplete(s)).toBe(true);
    }), { numRuns: 500 });
  });

  it("whatever it accepts to the end parses as a JSON object", () => {
    const pieces = fc.constantFrom("{", "}", "[", "]", ",", ":", '"', "a", "\\\\", "\\\\u00e9", "1", "-", ".", "e", "0", "true", "null", " ", "é", "\\n");
    fc.assert(fc.property(fc.array(pieces, { maxLength: 20 }), (parts) => {
      const text = parts.join("");
      const s = feed(text);
      if (s && isComplete(s)) {
        const value = JSON.parse(text);
        expect(typeof value === "object" && value !== null && !Array.isArray(value)).toBe(true);
      }
    }), { numRuns: 5000 });
  });

  it("knows the fewest bytes to a complete object from every state: never more than any real ending, and reached byte by byte", () => {
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), fc.nat(), (obj, cut) => {
      const text = bytes(JSON.stringify(obj));
      let s: JsonState = JSON_START;
      const at = cut % (text.length + 1);
      for (const b of text.slice(0, at)) s = step(s, b)!;
      expect(distance(s)).toBeLessThanOrEqual(text.length - at);
      // Some byte always gets one closer, until complete.
      let d = distance(s);
      while (d > 0) {
        let next: JsonState | null = null;
        for (let b = 0; b < 256 && !next; b++) {
          const n = step(s, b);
          if (n && distance(n) === d - 1) next = n;
        }
        expect(next, `no byte gets closer from ${JSON.stringify(s)}`).not.toBeNull();
        s = next!;
        d--;
      }
      expect(isComplete(s)).toBe(true);
    }), { numRuns: 300 });
  });

  it("refuses what JSON refuses", () => {
    for (const bad of ["[1]", '"x"', "{'a': 1}", '{"a": 01}', '{"a": 1,}', '{"a": tru}', '{"a": "\\x"}', '{"a"\\n: 1}x', '{"a": "\\u12G4"}', '{"a": 1.}', "{} {}"]) {
      const s = feed(bad);
      expect(s && isComplete(s), bad).toBeFalsy();
    }
  });
});

describe("the token mask on the compact vocabulary", () => {
  const tok = loadTokenizer(FIXTURE_DIR);
  const trie = new TokenTrie(tok);

  it("allows exactly the tokens whose bytes continue the JSON, and only end-of-text once it is complete", () => {
    const c = new JsonConstraint(trie);
    const open = tok.encode("{").at(-1)!;
    const word = tok.encode("hello")[0];
    let mask = c.mask();
    expect(mask[open]).toBe(1);
    expect(mask[word]).toBe(0);
    expect(mask[tok.eosId!]).toBe(0);
    for (const id of tok.encode('{"name": "Ann", "age": 7}')) {
      expect(c.mask()[id]).toBe(1);
      c.advance(id);
    }
    expect(c.complete).toBe(true);
    mask = c.mask();
    expect(Array.from(mask).reduce((a, b) => a + b, 0)).toBe(1);
    expect(mask[tok.eosId!]).toBe(1);
  });

  it("every token the mask allows keeps the grammar alive (tokens that end mid-string or mid-character too)", () => {
    const c = new JsonConstraint(trie);
    for (const id of tok.encode('{"text": "caf')) c.advance(id);
    const mask = c.mask();
    for (let id = 0; id < tok.vocabSize; id++) {
      if (!mask[id] || id === tok.eosId) continue;
      const probe = new JsonConstraint(trie);
      for (const t of tok.encode('{"text": "caf')) probe.advance(t);
      expect(() => probe.advance(id)).not.toThrow();
    }
  });
});

describe("generations in JSON mode", () => {
  it("always end as a complete JSON object inside max_tokens (random seeds, temperatures and budgets from 3 tokens up), with end-of-text", async () => {
    const tok = loadTokenizer(FIXTURE_DIR);
    const trie = new TokenTrie(tok);
    const engine = new Engine(await simdDecoder(), { maxBatch: 8, maxQueue: 64, prefixCache: false });
    let cut = 0; // replies the budget closed (they would have run past it)
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 1.5, noNaN: true }), fc.integer({ min: 3, max: 60 }), async (seed, temperature, maxTokens) => {
      const out: number[] = [];
      let finish: string | null = null;
      const gen = engine.generate({
        prompt: tok.encode("Data: "), maxTokens, sampling: { ...DEFAULT_SAMPLING, seed, temperature }, stopTokens: new Set([tok.eosId!]),
        constraint: new JsonConstraint(trie, maxTokens),
      });
      for await (const t of gen) {
        if (t.finish !== "stop") out.push(t.token);
        finish = t.finish;
      }
      expect(finish).toBe("stop");
      if (out.length === maxTokens - 1) cut++;
      const value = JSON.parse(tok.decode(out));
      expect(typeof value === "object" && value !== null && !Array.isArray(value)).toBe(true);
    }), { numRuns: 100, seed: 2026 });
    expect(cut).toBeGreaterThan(20); // the budget did the closing in many of them
  });
});
