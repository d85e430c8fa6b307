import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { Tokenizer, TokenizerError } from "../src/tokenizer/tokenizer.js";
import { loadTokenizer, loadTokenizerJson } from "../scripts/tokenizer/files.js";
import { CL100K_TOKENIZER_CONFIG, compressVocabulary, unreachableTokens } from "../scripts/tokenizer/compress.js";
import { sampleTexts } from "./helpers/corpus-sample.js";

// Text that stresses byte-level BPE: emoji (incl. ZWJ sequences), CJK, Hangul, combining marks,
// control characters, whitespace runs, and plain English.
const pieces = fc.oneof(
  fc.constantFrom("the", " quick", "Hello", "'s", "'ll", "123456", "don't", " \u00e9t\u00e9"),
  fc.constantFrom("👩‍👩‍👧", "🇬🇧", "😀", "🤷🏽‍♀️", "\ufeff", "\u200d", "e\u0301\u0302", "\u0915\u094d\u0937"),
  fc.string({ unit: fc.integer({ min: 0x4e00, max: 0x9fff }).map((c) => String.fromCodePoint(c)), maxLength: 6 }),
  fc.string({ unit: fc.integer({ min: 0xac00, max: 0xd7a3 }).map((c) => String.fromCodePoint(c)), maxLength: 6 }),
  fc.string({ unit: fc.integer({ min: 0x0300, max: 0x036f }).map((c) => String.fromCodePoint(c)), maxLength: 4 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCodePoint(c)), maxLength: 4 }),
  fc.string({ unit: fc.constantFrom(" ", "\t", "\n", "\r", "\u00a0", "\u3000"), maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 8 }).map((s) => s.toWellFormed()),
);
const unicodeText = fc.array(pieces, { maxLength: 12 }).map((p) => p.join(""));

let parent: Tokenizer;
let compact: Tokenizer;
let vocabMap: number[];
let compactJson: unknown;
let samples: string[];

beforeAll(async () => {
  parent = loadTokenizer("parent");
  samples = await sampleTexts(2, 1, 300_000);
  // Counts from a real corpus sample → a small compact vocabulary, exactly as the pipeline builds one.
  const counts = new Array(parent.vocabSize).fill(0);
  for (const text of samples) for (const id of parent.encode(text)) counts[id]++;
  const result = compressVocabulary(loadTokenizerJson("parent"), counts, { vocab: 2048 });
  compactJson = result.tokenizerJson;
  vocabMap = result.vocabMap;
  compact = Tokenizer.fromJSON(result.tokenizerJson, CL100K_TOKENIZER_CONFIG);
});

describe("round trip", () => {
  it("decode(encode(s)) === s for the parent and the compact tokenizer (10,000 cases)", () => {
    fc.assert(
      fc.property(unicodeText, (s) => {
        expect(parent.decode(parent.encode(s))).toBe(s);
        expect(compact.decode(compact.encode(s))).toBe(s);
      }),
      { numRuns: 10_000, seed: 42 },
    );
  });
});

describe("compact vocabulary", () => {
  it("has the requested size, bytes and specials first-class", () => {
    expect(compact.vocabSize).toBe(2048);
    expect(compact.specialTokens.get("<|endoftext|>")).toBe(2048 - 5);
    expect(vocabMap[compact.specialTokens.get("<|endoftext|>")!]).toBe(parent.specialTokens.get("<|endoftext|>"));
  });

  it("every kept token is produced by BPE over its own bytes", () => {
    expect(unreachableTokens(compactJson)).toEqual([]);
  });

  it("every kept token whose text the parent encodes as itself, the compact tokenizer encodes as itself", () => {
    let checked = 0;
    for (let id = 0; id < vocabMap.length; id++) {
      if (compact.isSpecial(id)) continue;
      const bytes = compact.tokenBytes(id);
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
      } catch {
        continue; // a partial UTF-8 sequence cannot be given as text
      }
      const viaParent = parent.encode(text);
      if (viaParent.length !== 1 || viaParent[0] !== vocabMap[id]) continue;
      expect(compact.encode(text)).toEqual([id]);
      checked++;
    }
    expect(checked).toBeGreaterThan(1900);
  });

  it("segments like the parent wherever all the parent's tokens are kept", () => {
    const parentToNew = new Map(vocabMap.map((p, n) => [p, n]));
    const lines = samples.flatMap((t) => t.split("\n")).filter((l) => l.length > 0);
    let compared = 0;
    for (const line of lines) {
      const parentIds = parent.encode(line);
      if (!parentIds.every((id) => parentToNew.has(id))) continue;
      expect(compact.encode(line)).toEqual(parentIds.map((id) => parentToNew.get(id)));
      compared++;
    }
    expect(compared).toBeGreaterThan(50);
  });

  it("covers the sample it was built from better than chance", () => {
    const text = samples.join("\n");
    expect(compact.encode(text).length / parent.encode(text).length).toBeLessThan(1.4);
  });
});

describe("streaming decoder", () => {
  it("token-by-token output equals the full decode and never emits U+FFFD for valid input", () => {
    fc.assert(
      fc.property(unicodeText, (s) => {
        for (const tok of [parent, compact]) {
          const ids = tok.encode(s);
          const stream = tok.streamDecoder();
          let out = "";
          for (const id of ids) {
            const chunk = stream.push(id);
            expect(chunk).not.toContain("\ufffd");
            out += chunk;
          }
          out += stream.flush();
          expect(out).toBe(tok.decode(ids));
        }
      }),
      { numRuns: 2_000, seed: 7 },
    );
  });

  it("holds back a split multi-byte character until it is complete", () => {
    const ids = compact.encode("🤷");
    expect(ids.length).toBeGreaterThan(1); // the emoji is not a single token in a 2k vocabulary
    const stream = compact.streamDecoder();
    const chunks = ids.map((id) => stream.push(id));
    expect(chunks.slice(0, -1).join("")).toBe("");
    expect(chunks.at(-1)).toBe("🤷");
  });
});

describe("bad input", () => {
  it("a malformed tokenizer.json is one clear error naming the file", () => {
    expect(() => Tokenizer.fromJSON({ model: { type: "WordPiece" } }, {}, "x/tokenizer.json")).toThrow(
      new TokenizerError('x/tokenizer.json: malformed tokenizer.json (model.type must be "BPE")'),
    );
    expect(() => Tokenizer.fromJSON("nope", {}, "y.json")).toThrow(/y\.json: malformed/);
  });

  it("an out-of-range id is an error, not garbage", () => {
    expect(() => compact.decode([999_999])).toThrow(TokenizerError);
  });
});
