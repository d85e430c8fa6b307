// Structured outputs with a JSON schema: the compiled automaton against instances of random schemas
// of the supported subset, and constrained generations that always parse and validate (issue 17).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { MAX_REF_DEPTH, schemaGrammar, UnsupportedSchema } from "../src/engine/constrain/json-schema.js";
import { GrammarConstraint, shortestBytes, TokenTrie, type Grammar } from "../src/engine/constrain/token-mask.js";
import { constraintFor } from "../src/openai/structured.js";
import { ApiError } from "../src/openai/errors.js";
import type { ChatRequest } from "../src/openai/schemas.js";
import type { LoadedModel } from "../src/model.js";
import { Engine } from "../src/engine/engine.js";
import { DEFAULT_SAMPLING } from "../src/engine/sampler.js";
import { loadTokenizer } from "../scripts/tokenizer/files.js";
import { FIXTURE_DIR, simdDecoder } from "./helpers/fixture.js";

type Schema = Record<string, unknown>;

/** Patterns of the supported subset, each with a string it matches. */
const PATTERNS: [string, string][] = [
  ["^[a-z]{2,4}$", "abc"], ["^\\d{3}-\\d{4}$", "555-1234"], ["^(cat|dog)s?$", "dogs"], ["ab+c", "xxabbbcé"],
  ["^[^\"\\\\]{0,3}$", "q!"], ["^\\w+@\\w+\\.com$", "a_1@b.com"], ["^[A-Z][a-z]*(?: [A-Z][a-z]*)*$", "Ann Lee"],
  ["^\"q\\\\\\n.$", "\"q\\\nz"], ["^(?:[0-9a-f]{2}){1,3}$|^none$", "none"], ["^[\\s\\S]?x*?$", "\txx"], ["^é{2}[à-å]$", "ééâ"],
];
const FORMAT_EXAMPLES: Record<string, string> = {
  date: "2024-02-28", "date-time": "2024-02-28T12:30:05.25Z", uuid: "123e4567-e89b-42d3-a456-426614174000", email: "ann.lee@mail.example.com",
};
/** A recursive type as zod and Pydantic emit one: a tree of named nodes. */
const TREE: Schema = {
  $defs: { Node: { type: "object", properties: { name: { type: "string", maxLength: 8 }, children: { type: "array", items: { $ref: "#/$defs/Node" }, maxItems: 2 } }, required: ["name", "children"], additionalProperties: false } },
  $ref: "#/$defs/Node",
};

/** Random schemas of the supported subset, nested a few levels. */
const schemaArb: fc.Arbitrary<Schema> = fc.letrec<{ schema: Schema }>((tie) => ({
  schema: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom<Schema>({ type: "string" }, { type: "number" }, { type: "integer" }, { type: "boolean" }, { type: "null" }, { type: ["integer", "null"] }),
    fc.uniqueArray(fc.oneof(fc.string({ maxLength: 4 }), fc.integer({ min: -9, max: 99 }), fc.boolean()), { minLength: 1, maxLength: 4 }).map((e): Schema => ({ enum: e })),
    fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.constant(null)).map((v): Schema => ({ const: v })),
    fc.tuple(fc.nat(4), fc.nat(3), fc.boolean()).map(([min, more, bounded]): Schema => ({ type: "string", minLength: min, ...(bounded ? { maxLength: min + more } : {}) })),
    fc.constantFrom(...PATTERNS).map(([pattern]): Schema => ({ type: "string", pattern })),
    fc.constantFrom(...Object.keys(FORMAT_EXAMPLES)).map((format): Schema => ({ type: "string", format })),
    fc.tuple(fc.integer({ min: -3000, max: 3000 }), fc.nat(5000), fc.constantFrom("both", "min", "max", "exclusive")).map(([lo, span, which]): Schema => ({
      type: "integer",
      ...(which === "both" || which === "min" ? { minimum: lo } : {}),
      ...(which === "both" || which === "max" ? { maximum: lo + span } : {}),
      ...(which === "exclusive" ? { exclusiveMinimum: lo, exclusiveMaximum: lo + span + 2 } : {}),
    })),
    tie("schema").map((items): Schema => ({ type: "array", items })),
    fc.tuple(tie("schema"), fc.nat(2), fc.nat(2), fc.boolean()).map(([items, min, more, bounded]): Schema => ({ type: "array", items, minItems: min, ...(bounded ? { maxItems: min + more } : {}) })),
    fc.array(tie("schema"), { minLength: 2, maxLength: 3 }).map((anyOf): Schema => ({ anyOf })),
    fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z]{1,6}$/), tie("schema"), fc.boolean()), { minLength: 1, maxLength: 4, selector: (t) => t[0] }).map((props): Schema => ({
      type: "object",
      properties: Object.fromEntries(props.map(([k, s]) => [k, s])),
      required: props.filter(([, , r]) => r).map(([k]) => k),
      additionalProperties: false,
    })),
  ),
})).schema.chain((s) => {
  const top: Schema = s.type === "object" ? s : { type: "object", properties: { value: s }, required: ["value"], additionalProperties: false };
  // Half of them reach the same type through $defs, twice (as zod and Pydantic write a repeated
  // type), beside a recursive one.
  return fc.boolean().map((viaRef) => (viaRef ? {
    $defs: { T: s, ...(TREE.$defs as Schema) },
    type: "object", additionalProperties: false, required: ["one"],
    properties: { one: { $ref: "#/$defs/T" }, two: { anyOf: [{ $ref: "#/$defs/T" }, { type: "null" }] }, tree: { $ref: "#/$defs/Node" } },
  } : top));
});

const codePoints = (v: string) => [...v].length;
/** Format checks written independently of the automaton: zod's regular expressions and Date. */
const FORMAT_CHECKS: Record<string, (v: string) => boolean> = {
  date: (v) => /^\d{4}-\d{2}-\d{2}$/.test(v) && new Date(`${v}T00:00:00Z`).toISOString().slice(0, 10) === v,
  "date-time": (v) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(v) && new Date(v).toISOString().slice(0, 19) === v.slice(0, 19),
  uuid: (v) => /^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}|00000000-0000-0000-0000-000000000000)$/.test(v),
  email: (v) => /^(?!\.)(?!.*\.\.)([A-Za-z0-9_'+\-\.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}$/.test(v),
};

/** The subset's meaning, written independently of the automaton. */
function validates(schema: Schema, v: unknown, root: Schema = schema): boolean {
  if ("$ref" in schema) {
    const target = (schema.$ref as string).slice(2).split("/").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root);
    return validates((schema.$ref === "#" ? root : target) as Schema, v, root);
  }
  if ("const" in schema) return JSON.stringify(v) === JSON.stringify(schema.const);
  if ("enum" in schema) return (schema.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(v));
  if ("anyOf" in schema) return (schema.anyOf as Schema[]).some((s) => validates(s, v, root));
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const n = (k: string) => schema[k] as number | undefined;
  return types.some((t) => {
    switch (t) {
      case "string":
        return typeof v === "string" && codePoints(v) >= (n("minLength") ?? 0) && codePoints(v) <= (n("maxLength") ?? Infinity)
          && (schema.pattern === undefined || new RegExp(schema.pattern as string).test(v)) && (schema.format === undefined || FORMAT_CHECKS[schema.format as string](v));
      case "number": return typeof v === "number";
      case "integer":
        return Number.isInteger(v) && !Object.is(v, -0) && (v as number) >= (n("minimum") ?? -Infinity) && (v as number) <= (n("maximum") ?? Infinity)
          && (v as number) > (n("exclusiveMinimum") ?? -Infinity) && (v as number) < (n("exclusiveMaximum") ?? Infinity);
      case "boolean": return typeof v === "boolean";
      case "null": return v === null;
      case "array":
        return Array.isArray(v) && v.length >= (n("minItems") ?? 0) && v.length <= (n("maxItems") ?? Infinity) && v.every((x) => validates(schema.items as Schema, x, root));
      case "object": {
        if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
        const props = schema.properties as Record<string, Schema>;
        const o = v as Record<string, unknown>;
        return Object.keys(o).every((k) => k in props && validates(props[k], o[k], root)) && ((schema.required as string[]) ?? []).every((k) => k in o);
      }
      default: return false;
    }
  });
}

/** An instance of a schema, in the schema's property order (as the automaton writes them). */
function instance(schema: Schema, pick: () => number, root: Schema = schema, depth = 0): unknown {
  if ("$ref" in schema) {
    const target = (schema.$ref as string).slice(2).split("/").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root);
    return instance(target as Schema, () => (depth > 2 ? 0 : pick()), root, depth + 1);
  }
  if ("const" in schema) return schema.const;
  if ("enum" in schema) return (schema.enum as unknown[])[pick() % (schema.enum as unknown[]).length];
  if ("anyOf" in schema) return instance((schema.anyOf as Schema[])[pick() % (schema.anyOf as Schema[]).length], pick, root, depth);
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const t = types[pick() % types.length];
  const n = (k: string) => schema[k] as number | undefined;
  if (t === "string") {
    if (schema.pattern !== undefined) return PATTERNS.find(([p]) => p === schema.pattern)![1];
    if (schema.format !== undefined) return FORMAT_EXAMPLES[schema.format as string];
    if (n("minLength") !== undefined) return "é\"x".repeat(3).slice(0, n("minLength")! + (pick() % ((n("maxLength") ?? 9) - n("minLength")! + 1)));
    return ["", "a\"b", "é\n", "x"][pick() % 4];
  }
  if (t === "number") return [0, -1.5, 2e10, 3.25][pick() % 4];
  if (t === "integer") {
    let lo = n("minimum") ?? (n("exclusiveMinimum") !== undefined ? n("exclusiveMinimum")! + 1 : undefined);
    let hi = n("maximum") ?? (n("exclusiveMaximum") !== undefined ? n("exclusiveMaximum")! - 1 : undefined);
    lo ??= (hi ?? 50) - 100;
    hi ??= lo + 100;
    return lo + (pick() % (hi - lo + 1));
  }
  if (t === "boolean") return pick() % 2 === 0;
  if (t === "null") return null;
  if (t === "array") {
    const min = n("minItems") ?? 0, max = n("maxItems") ?? min + 2;
    return Array.from({ length: min + (pick() % (max - min + 1)) }, () => instance(schema.items as Schema, pick, root, depth));
  }
  const props = schema.properties as Record<string, Schema>;
  const required = new Set((schema.required as string[]) ?? []);
  return Object.fromEntries(Object.entries(props).filter(([k]) => required.has(k) || pick() % 2 === 0).map(([k, s]) => [k, instance(s, pick, root, depth)]));
}

const accepts = (g: Grammar<number[]>, text: string) => {
  let s: number[] | null = g.start;
  for (const b of new TextEncoder().encode(text)) if (!(s = g.step(s!, b))) return false;
  return g.complete(s!);
};

describe("the schema automaton", () => {
  it("accepts instances of random schemas (compact, and with a space after : and ,)", () => {
    fc.assert(fc.property(schemaArb, fc.array(fc.nat(), { minLength: 64, maxLength: 64 }), (schema, picks) => {
      let i = 0;
      const v = instance(schema, () => picks[i++ % picks.length]);
      expect(validates(schema, v)).toBe(true);
      const g = schemaGrammar(schema);
      const compact = JSON.stringify(v);
      expect(accepts(g, compact), compact).toBe(true);
      const spaced = compact.replace(/("(?:[^"\\]|\\.)*")|([:,])/g, (m, str, sep) => (str ? str : `${sep} `));
      expect(accepts(g, spaced), spaced).toBe(true);
    }), { numRuns: 400 });
  });

  it("refuses a missing required property, an extra one, a wrong type and a value outside the enum", () => {
    const g = schemaGrammar({ type: "object", properties: { a: { type: "integer" }, b: { enum: ["x", "y"] } }, required: ["a"], additionalProperties: false });
    expect(accepts(g, '{"a":1,"b":"x"}')).toBe(true);
    expect(accepts(g, '{"a":1}')).toBe(true);
    for (const bad of ['{"b":"x"}', '{"a":1,"c":2}', '{"a":"1"}', '{"a":1.5}', '{"a":1,"b":"z"}', '{"b":"x","a":1}']) expect(accepts(g, bad), bad).toBe(false);
  });

  it("integer bounds are exact (inclusive and exclusive, one side or both, clamped to the safe integers)", () => {
    const g = (bounds: Schema) => schemaGrammar({ type: "object", properties: { n: { type: "integer", ...bounds } }, required: ["n"], additionalProperties: false });
    const inRange = (bounds: Schema, n: string) => accepts(g(bounds), `{"n":${n}}`);
    for (const n of ["-15", "-1", "0", "9", "10", "99", "100", "229", "230"]) expect(inRange({ minimum: -15, maximum: 230 }, n), n).toBe(true);
    for (const n of ["-16", "231", "1000", "-0", "007", "1.0"]) expect(inRange({ minimum: -15, maximum: 230 }, n), n).toBe(false);
    expect(inRange({ exclusiveMinimum: 0 }, "0")).toBe(false);
    expect(inRange({ exclusiveMinimum: 0 }, "9007199254740991")).toBe(true); // one bound: the other side stops at the safe integers
    expect(inRange({ exclusiveMinimum: 0 }, "9007199254740992")).toBe(false);
    expect(inRange({ minimum: 0 }, "-1")).toBe(false);
    expect(inRange({ maximum: -3 }, "-2")).toBe(false);
    expect(inRange({ maximum: -3 }, "-30000")).toBe(true);
    expect(inRange({ minimum: -9007199254740991, maximum: 9007199254740991 }, "9007199254740991")).toBe(true);
    expect(inRange({ minimum: -9007199254740991, maximum: 9007199254740991 }, "9007199254740992")).toBe(false);
    expect(inRange({ minimum: 2.5, maximum: 3.5 }, "3")).toBe(true);
    // Numbers: bounds of ±10^15 and beyond (what generators write for "any") are kept to 15 digits; tighter ones are refused.
    const x = schemaGrammar({ type: "object", properties: { x: { type: "number", maximum: 1e300 } }, required: ["x"], additionalProperties: false });
    expect(accepts(x, '{"x":-12.5}')).toBe(true);
    expect(accepts(x, '{"x":1e5}')).toBe(false);
    expect(() => schemaGrammar({ type: "object", properties: { n: { type: "number", minimum: 0 } } })).toThrow(/minimum 0/);
    expect(() => g({ minimum: 5, maximum: 4 })).toThrow(/no integer/);
  });

  it("strings: length in code points, patterns (unanchored unless anchored), formats", () => {
    const g = (s: Schema) => schemaGrammar({ type: "object", properties: { s }, required: ["s"], additionalProperties: false });
    const str = (s: Schema, v: string) => accepts(g(s), `{"s":${JSON.stringify(v)}}`);
    const len = { type: "string", minLength: 2, maxLength: 3 };
    for (const v of ["ab", "é\"😀", "a\n"]) expect(str(len, v), v).toBe(true);
    for (const v of ["a", "abcd", ""]) expect(str(len, v), v).toBe(false);
    expect(accepts(g(len), '{"s":"\\uD83D\\uDE00"}')).toBe(false); // escaped surrogates are never written
    expect(accepts(g({ type: "string", pattern: "ab+c" }), '{"s":"xabbcy"}')).toBe(true);
    expect(accepts(g({ type: "string", pattern: "^ab+c" }), '{"s":"xabbc"}')).toBe(false);
    expect(accepts(g({ type: "string", pattern: "^a\"b$" }), '{"s":"a\\"b"}')).toBe(true);
    expect(str({ type: "string", format: "date" }, "2024-02-29")).toBe(false); // February stops at the 28th
    expect(str({ type: "string", format: "date" }, "2024-04-30")).toBe(true);
    expect(str({ type: "string", format: "date" }, "2024-04-31")).toBe(false);
    expect(str({ type: "string", format: "date-time" }, "2024-12-31T23:59:59.999Z")).toBe(true);
    expect(str({ type: "string", format: "uuid" }, "123E4567-e89b-42d3-a456-426614174000")).toBe(false);
    expect(str({ type: "string", format: "email" }, "a..b@x.io")).toBe(false);
  });

  it("$ref into $defs, definitions or the root; recursion is cut at a depth, so every value written is finite", () => {
    const list = { definitions: { L: { type: "object", properties: { v: { type: "integer" }, next: { anyOf: [{ $ref: "#/definitions/L" }, { type: "null" }] } }, required: ["v", "next"], additionalProperties: false } }, $ref: "#/definitions/L" };
    const nest = (depth: number): string => (depth === 0 ? "null" : `{"v":${depth},"next":${nest(depth - 1)}}`);
    expect(accepts(schemaGrammar(list), nest(MAX_REF_DEPTH))).toBe(true);
    expect(accepts(schemaGrammar(list), nest(MAX_REF_DEPTH + 1))).toBe(false);
    const root = { type: "object", properties: { kids: { type: "array", items: { $ref: "#" } } }, required: ["kids"], additionalProperties: false };
    expect(accepts(schemaGrammar(root), '{"kids":[{"kids":[]},{"kids":[{"kids":[]}]}]}')).toBe(true);
    const g = schemaGrammar(TREE);
    expect(g.distance(g.start)).toBe('{"name":"","children":[]}'.length);
    // No finite value at all: a 400, not a reply that cannot close.
    const endless = { $defs: { E: { type: "object", properties: { e: { $ref: "#/$defs/E" } }, required: ["e"], additionalProperties: false } }, $ref: "#/$defs/E" };
    expect(() => schemaGrammar(endless)).toThrow(/no finite value/);
  });

  it("a keyword outside the subset is an error naming its path, never unconstrained output; so is an automaton over the state limit", () => {
    const cases: [Schema, string][] = [
      [{ type: "object", properties: { a: { type: "string", pattern: "(?=x)" } } }, "schema.properties.a.pattern"],
      [{ type: "object", properties: { a: { type: "string", pattern: "(a)\\1" } } }, "schema.properties.a.pattern"],
      [{ type: "object", properties: { a: { type: "string", pattern: "a^b" } } }, "schema.properties.a.pattern"],
      [{ type: "object", properties: { a: { type: "string", format: "uri" } } }, "schema.properties.a.format"],
      [{ type: "object", properties: { a: { type: "string", pattern: "a", minLength: 1 } } }, "schema.properties.a.pattern"],
      [{ type: "object", properties: { a: { type: "array", items: { type: "string" }, uniqueItems: true } } }, "schema.properties.a.uniqueItems"],
      [{ type: "object" }, "schema.properties"],
      [{ type: "object", properties: { a: { type: "string" } }, additionalProperties: true }, "schema.additionalProperties"],
      [{ type: "object", properties: { a: { oneOf: [] } } }, "schema.properties.a.oneOf"],
      [{ type: "object", properties: { a: { $ref: "https://example.com/s.json" } } }, "schema.properties.a.$ref"],
      [{ type: "object", properties: { a: { $ref: "#/$defs/missing" } } }, "schema.properties.a.$ref"],
      [{ $defs: { X: { type: "string", pattern: "\\p{L}" } }, type: "object", properties: { a: { $ref: "#/$defs/X" } } }, "schema.$defs.X.pattern"],
      [{ type: "object", properties: { a: { type: "string", maxLength: 100_000 } } }, "schema"],
    ];
    for (const [schema, path] of cases) {
      expect(() => schemaGrammar(schema), path).toThrow(UnsupportedSchema);
      try {
        schemaGrammar(schema);
      } catch (err) {
        expect((err as UnsupportedSchema).path).toBe(path);
      }
    }
  });
});

/** A stand-in for a model: picks allowed tokens at random, following jump-forward tokens when asked. */
function randomReply(grammar: Grammar<number[]>, trie: TokenTrie, budget: number, rng: () => number, jump: boolean): { text: string; tokens: number; closed: boolean } {
  const c = new GrammarConstraint(grammar, trie, budget);
  const out: number[] = [];
  const eos = trie.eosId!;
  while (out.length < budget) {
    if (jump) {
      for (const t of c.forced()) {
        if (out.length >= budget) break;
        expect(c.mask()[t], "a forced token is one the mask allows").toBe(1);
        c.advance(t);
        out.push(t);
      }
      if (out.length >= budget) break;
    }
    const mask = c.mask();
    const allowed: number[] = [];
    for (let t = 0; t < mask.length; t++) if (mask[t]) allowed.push(t);
    // Mostly uniform over the allowed tokens (strings run on), sometimes the first allowed one.
    const t = allowed[rng() < 0.9 ? Math.floor(rng() * allowed.length) : 0];
    out.push(t);
    if (t === eos) return { text: decodeBytes(trie, out.slice(0, -1)), tokens: out.length, closed: true };
    c.advance(t);
  }
  return { text: decodeBytes(trie, out), tokens: out.length, closed: false };
}

function decodeBytes(trie: TokenTrie, tokens: number[]): string {
  const bytes = tokens.flatMap((t) => [...trie.vocab.tokenBytes(t)]);
  return new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes));
}

function mulberry(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("replies inside a budget", () => {
  const tok = loadTokenizer(FIXTURE_DIR);
  const trie = new TokenTrie(tok);
  const model = { tokenizer: tok } as unknown as LoadedModel;
  const request = (schema: Schema) => ({ model: "m", messages: [], response_format: { type: "json_schema", json_schema: { name: "s", schema } } }) as unknown as ChatRequest;

  it("random schemas × seeds × budgets from the shortest value up: always a complete, valid reply ending in end-of-text; below it, a 400 naming max_tokens", () => {
    fc.assert(fc.property(schemaArb, fc.integer(), fc.nat(40), fc.boolean(), (schema, seed, extra, jump) => {
      const grammar = schemaGrammar(schema);
      const needed = shortestBytes(grammar) + 1;
      const structured = constraintFor(request(schema), model)!;
      let refused: unknown;
      try {
        structured.within(needed - 1, "max_completion_tokens");
      } catch (err) {
        refused = err;
      }
      expect(refused).toBeInstanceOf(ApiError);
      expect((refused as ApiError).status).toBe(400);
      expect((refused as ApiError).param).toBe("max_completion_tokens");
      expect(() => structured.within(needed, "max_tokens")).not.toThrow();
      const r = randomReply(grammar, trie, needed + extra, mulberry(seed), jump);
      expect(r.closed, r.text).toBe(true);
      expect(r.tokens).toBeLessThanOrEqual(needed + extra);
      expect(validates(schema, JSON.parse(r.text)), `${JSON.stringify(schema)}\n${r.text}`).toBe(true);
    }), { numRuns: 300, seed: 2026 });
  }, 120_000);

  it("jump-forward: the forced bytes of a schema, split into tokens greedily, longest first", () => {
    const schema = { type: "object", properties: { name: { type: "string" }, mood: { enum: ["happy", "hungry", "sad"] } }, required: ["name", "mood"], additionalProperties: false };
    const c = new GrammarConstraint(schemaGrammar(schema), trie, 100);
    const text = (ids: number[]) => decodeBytes(trie, ids);
    const forced = c.forced();
    expect(text(forced)).toBe('{"name":');
    // Greedy longest match: each token is the longest in the vocabulary whose bytes continue the forced run.
    const vocabulary = new Set(Array.from({ length: tok.vocabSize }, (_, i) => (tok.isSpecial(i) ? "" : Buffer.from(tok.tokenBytes(i)).toString("latin1"))));
    let rest = '{"name":';
    for (const t of forced) {
      const piece = text([t]);
      expect(rest.startsWith(piece)).toBe(true);
      for (let longer = piece.length + 1; longer <= rest.length; longer++) expect(vocabulary.has(rest.slice(0, longer)), rest.slice(0, longer)).toBe(false);
      rest = rest.slice(piece.length);
    }
    for (const t of forced) c.advance(t);
    expect(c.forced()).toEqual([]); // a space or the string: a choice
    for (const t of tok.encode('"Al", "mood": "h')) c.advance(t);
    expect(text(c.forced())).toBe(""); // "appy" or "ungry": still a choice
    c.advance(tok.encode("u")[0]);
    expect(text(c.forced())).toBe('ngry"}');
  });
});

describe("generations under a schema", () => {
  it("always end with a complete reply that parses and validates, inside max_tokens (random schemas, seeds, temperatures and budgets; jump-forward on or off)", async () => {
    const tok = loadTokenizer(FIXTURE_DIR);
    const trie = new TokenTrie(tok);
    const engine = new Engine(await simdDecoder(), { maxBatch: 8, maxQueue: 64, prefixCache: false });
    // logprobs null: none asked for, so the engine appends forced tokens (jump-forward); 0: token by token.
    await fc.assert(fc.asyncProperty(schemaArb, fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 1.5, noNaN: true }), fc.nat(48), fc.constantFrom(null, 0), async (schema, seed, temperature, extra, logprobs) => {
      const out: number[] = [];
      let finish: string | null = null;
      const grammar = schemaGrammar(schema);
      const maxTokens = shortestBytes(grammar) + 1 + extra;
      const constraint = new GrammarConstraint(grammar, trie, maxTokens);
      for await (const t of engine.generate({ prompt: tok.encode("Data: "), maxTokens, sampling: { ...DEFAULT_SAMPLING, seed, temperature, logprobs }, stopTokens: new Set([tok.eosId!]), constraint })) {
        if (t.finish !== "stop") out.push(t.token);
        finish = t.finish;
      }
      expect(finish).toBe("stop");
      expect(out.length).toBeLessThan(maxTokens);
      const text = tok.decode(out);
      expect(validates(schema, JSON.parse(text)), text).toBe(true);
    }), { numRuns: 100, seed: 2026 });
  }, 180_000);

  it("jump-forward: forced tokens are appended as one row with the sampled one, in fewer decode steps, and the reply is the same kind of valid", async () => {
    const tok = loadTokenizer(FIXTURE_DIR);
    const trie = new TokenTrie(tok);
    const engine = new Engine(await simdDecoder(), { maxBatch: 1, maxQueue: 4, prefixCache: false });
    const schema = {
      type: "object", additionalProperties: false, required: ["name", "age", "email", "tags", "status", "address"],
      properties: {
        name: { type: "string", maxLength: 6 }, age: { type: "integer", minimum: 0, maximum: 120 }, email: { type: "string", format: "email" },
        tags: { type: "array", items: { enum: ["red", "green"] }, maxItems: 2 }, status: { enum: ["active", "inactive", "banned"] },
        address: { type: "object", additionalProperties: false, required: ["city", "zip"], properties: { city: { type: "string", maxLength: 5 }, zip: { type: "string", pattern: "^\\d{5}$" } } },
      },
    };
    const grammar = schemaGrammar(schema);
    const reply = async (jump: boolean, seed: number) => {
      const c = new GrammarConstraint(grammar, trie, 200);
      const constraint = jump ? c : { mask: (left: number) => c.mask(left), advance: (id: number) => c.advance(id) };
      const steps = engine.stats.steps;
      const out: number[] = [];
      let finish: string | null = null;
      for await (const t of engine.generate({ prompt: tok.encode("Data: "), maxTokens: 200, sampling: { ...DEFAULT_SAMPLING, seed, temperature: 0.8, logprobs: null }, stopTokens: new Set([tok.eosId!]), constraint })) {
        if (t.finish !== "stop") out.push(t.token);
        finish = t.finish;
      }
      expect(finish).toBe("stop");
      const text = tok.decode(out);
      expect(validates(schema, JSON.parse(text)), text).toBe(true);
      return { steps: engine.stats.steps - steps, tokens: out.length + 1 };
    };
    for (const seed of [1, 2, 3]) {
      const plain = await reply(false, seed), jump = await reply(true, seed);
      expect(plain.steps).toBe(plain.tokens); // the prompt's step samples the first token; one decode step per token after it
      expect(jump.steps).toBeLessThan(jump.tokens - 10); // six property names and their punctuation, at least, came without a step
    }
  }, 60_000);
});
