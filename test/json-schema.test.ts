// Structured outputs with a JSON schema: the compiled automaton against instances of random schemas
// of the supported subset, and constrained generations that always parse and validate (issue 17).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { schemaGrammar, UnsupportedSchema } from "../src/engine/constrain/json-schema.js";
import { GrammarConstraint, TokenTrie, type Grammar } from "../src/engine/constrain/token-mask.js";
import { Engine } from "../src/engine/engine.js";
import { DEFAULT_SAMPLING } from "../src/engine/sampler.js";
import { loadTokenizer } from "../scripts/tokenizer/files.js";
import { FIXTURE_DIR, simdDecoder } from "./helpers/fixture.js";

type Schema = Record<string, unknown>;

/** Random schemas of the supported subset, nested a few levels. */
const schemaArb: fc.Arbitrary<Schema> = fc.letrec<{ schema: Schema }>((tie) => ({
  schema: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom<Schema>({ type: "string" }, { type: "number" }, { type: "integer" }, { type: "boolean" }, { type: "null" }, { type: ["integer", "null"] }),
    fc.uniqueArray(fc.oneof(fc.string({ maxLength: 4 }), fc.integer({ min: -9, max: 99 }), fc.boolean()), { minLength: 1, maxLength: 4 }).map((e): Schema => ({ enum: e })),
    fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.constant(null)).map((v): Schema => ({ const: v })),
    tie("schema").map((items): Schema => ({ type: "array", items })),
    fc.array(tie("schema"), { minLength: 2, maxLength: 3 }).map((anyOf): Schema => ({ anyOf })),
    fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z]{1,6}$/), tie("schema"), fc.boolean()), { minLength: 1, maxLength: 4, selector: (t) => t[0] }).map((props): Schema => ({
      type: "object",
      properties: Object.fromEntries(props.map(([k, s]) => [k, s])),
      required: props.filter(([, , r]) => r).map(([k]) => k),
      additionalProperties: false,
    })),
  ),
})).schema.map((s) => (s.type === "object" ? s : { type: "object", properties: { value: s }, required: ["value"], additionalProperties: false }));

/** The subset's meaning, written independently of the automaton. */
function validates(schema: Schema, v: unknown): boolean {
  if ("const" in schema) return JSON.stringify(v) === JSON.stringify(schema.const);
  if ("enum" in schema) return (schema.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(v));
  if ("anyOf" in schema) return (schema.anyOf as Schema[]).some((s) => validates(s, v));
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return types.some((t) => {
    switch (t) {
      case "string": return typeof v === "string";
      case "number": return typeof v === "number";
      case "integer": return Number.isInteger(v);
      case "boolean": return typeof v === "boolean";
      case "null": return v === null;
      case "array": return Array.isArray(v) && v.every((x) => validates(schema.items as Schema, x));
      case "object": {
        if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
        const props = schema.properties as Record<string, Schema>;
        const o = v as Record<string, unknown>;
        return Object.keys(o).every((k) => k in props && validates(props[k], o[k])) && ((schema.required as string[]) ?? []).every((k) => k in o);
      }
      default: return false;
    }
  });
}

/** An instance of a schema, in the schema's property order (as the automaton writes them). */
function instance(schema: Schema, pick: () => number): unknown {
  if ("const" in schema) return schema.const;
  if ("enum" in schema) return (schema.enum as unknown[])[pick() % (schema.enum as unknown[]).length];
  if ("anyOf" in schema) return instance((schema.anyOf as Schema[])[pick() % (schema.anyOf as Schema[]).length], pick);
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const t = types[pick() % types.length];
  if (t === "string") return ["", "a\"b", "é\n", "x"][pick() % 4];
  if (t === "number") return [0, -1.5, 2e10, 3.25][pick() % 4];
  if (t === "integer") return [0, 7, -42][pick() % 3];
  if (t === "boolean") return pick() % 2 === 0;
  if (t === "null") return null;
  if (t === "array") return Array.from({ length: pick() % 3 }, () => instance(schema.items as Schema, pick));
  const props = schema.properties as Record<string, Schema>;
  const required = new Set((schema.required as string[]) ?? []);
  return Object.fromEntries(Object.entries(props).filter(([k]) => required.has(k) || pick() % 2 === 0).map(([k, s]) => [k, instance(s, pick)]));
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

  it("bounds as wide as the safe integers (zod's .int()) keep numbers to 15 digits; tighter ones are refused", () => {
    const g = schemaGrammar({ type: "object", properties: { n: { type: "integer", minimum: -9007199254740991, maximum: 9007199254740991 } }, required: ["n"], additionalProperties: false });
    expect(accepts(g, '{"n":123456789012345}')).toBe(true);
    expect(accepts(g, '{"n":-7}')).toBe(true);
    expect(accepts(g, '{"n":1234567890123456}')).toBe(false);
    const x = schemaGrammar({ type: "object", properties: { x: { type: "number", maximum: 1e300 } }, required: ["x"], additionalProperties: false });
    expect(accepts(x, '{"x":-12.5}')).toBe(true);
    expect(accepts(x, '{"x":1e5}')).toBe(false);
    expect(() => schemaGrammar({ type: "object", properties: { n: { type: "integer", minimum: 0 } } })).toThrow(/minimum 0/);
  });

  it("a keyword outside the subset is an error naming its path, never unconstrained output", () => {
    const cases: [Schema, string][] = [
      [{ type: "object", properties: { a: { type: "string", pattern: "x" } } }, "schema.properties.a.pattern"],
      [{ type: "object", properties: { a: { type: "array", items: { type: "string" }, maxItems: 2 } } }, "schema.properties.a.maxItems"],
      [{ type: "object" }, "schema.properties"],
      [{ type: "object", properties: { a: { type: "string" } }, additionalProperties: true }, "schema.additionalProperties"],
      [{ type: "object", properties: { a: { oneOf: [] } } }, "schema.properties.a.oneOf"],
    ];
    for (const [schema, path] of cases) {
      expect(() => schemaGrammar(schema)).toThrow(UnsupportedSchema);
      try {
        schemaGrammar(schema);
      } catch (err) {
        expect((err as UnsupportedSchema).path).toBe(path);
      }
    }
  });
});

describe("generations under a schema", () => {
  it("parse and validate whenever they stop (random schemas, seeds and temperatures)", async () => {
    const tok = loadTokenizer(FIXTURE_DIR);
    const trie = new TokenTrie(tok);
    const engine = new Engine(await simdDecoder(), { maxBatch: 8, maxQueue: 64, prefixCache: false });
    const closers = new Map(['"', "}", "]"].flatMap((t) => tok.encode(t)).map((id) => [id, 8] as [number, number]));
    let stopped = 0;
    await fc.assert(fc.asyncProperty(schemaArb, fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 1.5, noNaN: true }), async (schema, seed, temperature) => {
      const out: number[] = [];
      let finish: string | null = null;
      const constraint = new GrammarConstraint(schemaGrammar(schema), trie);
      for await (const t of engine.generate({ prompt: tok.encode("Data: "), maxTokens: 48, sampling: { ...DEFAULT_SAMPLING, seed, temperature, logitBias: closers }, stopTokens: new Set([tok.eosId!]), constraint })) {
        if (t.finish !== "stop") out.push(t.token);
        finish = t.finish;
      }
      if (finish === "stop") {
        stopped++;
        const text = tok.decode(out);
        expect(validates(schema, JSON.parse(text)), text).toBe(true);
      } else expect(finish).toBe("length");
    }), { numRuns: 150, seed: 2026 });
    expect(stopped).toBeGreaterThan(20);
  }, 120_000);
});
