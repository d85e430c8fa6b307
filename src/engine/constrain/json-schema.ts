// JSON Schema → a byte-level automaton for constrained decoding (OpenAI's json_schema response
// format). The supported subset compiles to a nondeterministic automaton (Thompson's construction):
// object with properties (in schema order; required ones always, others optional) and
// additionalProperties false; string (minLength / maxLength, or a pattern, or a format: date,
// date-time, uuid, email); number; integer (minimum / maximum / exclusive bounds, exact); boolean;
// null; enum; const; array with items (minItems / maxItems); anyOf, a one-element allOf and type
// lists; $ref into the schema ($defs, definitions, any JSON pointer), recursion cut at a depth.
// A keyword outside the subset is an error naming its path — never silently unconstrained output.
// Output is compact JSON with at most one space after ":" and ",".
//
// Every node knows its distance (the fewest bytes to the accepting node), computed once the automaton
// is built: states that cannot complete are dropped, and the token masker closes by it.
import { compilePattern, FORMATS, type AutomatonBuilder } from "./regex.js";

export class UnsupportedSchema extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

/** An automaton node: byte-range transitions and ε-edges. */
interface Node {
  edges: { lo: number; hi: number; to: number }[];
  eps: number[];
}

/** A fragment of the automaton: from `start`, reaching `end` has read one value. */
export interface Fragment {
  start: number;
  end: number;
}

const MAX_NODES = 50_000;
/** A $ref met this many times on one path is not expanded further (that branch cannot be taken). */
export const MAX_REF_DEPTH = 5;
const ANNOTATIONS = new Set(["title", "description", "$schema", "$id", "default", "examples", "$comment", "strict", "$defs", "definitions", "readOnly", "writeOnly", "deprecated"]);
const KEYWORDS = ["type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "allOf", "$ref",
  "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "format", "minItems", "maxItems"];
const KNOWN = new Set(KEYWORDS);
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export class SchemaAutomaton implements AutomatonBuilder {
  readonly nodes: Node[] = [];
  readonly start: number;
  readonly accept: number;
  /** Fewest bytes from each node to `accept` (Infinity: none). */
  readonly dist: Float64Array;
  /** $refs being expanded, with how many times each is open on the current path. */
  private readonly open = new Map<string, number>();

  constructor(private readonly root: unknown) {
    const f = this.value(root, "schema");
    this.start = f.start;
    this.accept = f.end;
    this.dist = this.distances();
    if (!Number.isFinite(this.dist[this.start])) {
      throw new UnsupportedSchema("schema", `the schema admits no finite value (a $ref recursion is cut after ${MAX_REF_DEPTH} levels)`);
    }
  }

  node(): number {
    if (this.nodes.length >= MAX_NODES) throw new UnsupportedSchema("schema", `the schema is too large to compile (over ${MAX_NODES} states)`);
    this.nodes.push({ edges: [], eps: [] });
    return this.nodes.length - 1;
  }

  edge(from: number, lo: number, hi: number, to: number): void {
    this.nodes[from].edges.push({ lo, hi, to });
  }

  eps(from: number, to: number): void {
    this.nodes[from].eps.push(to);
  }

  /** One byte in one of the ranges. */
  ranges(rs: [number, number][]): Fragment {
    const start = this.node(), end = this.node();
    for (const [lo, hi] of rs) this.edge(start, lo, hi, end);
    return { start, end };
  }

  /** A fixed byte string. */
  bytes(text: string | Uint8Array): Fragment {
    const start = this.node();
    let at = start;
    for (const b of typeof text === "string" ? new TextEncoder().encode(text) : text) {
      const next = this.node();
      this.edge(at, b, b, next);
      at = next;
    }
    return { start, end: at };
  }

  seq(...parts: Fragment[]): Fragment {
    if (parts.length === 0) return this.bytes("");
    for (let i = 1; i < parts.length; i++) this.eps(parts[i - 1].end, parts[i].start);
    return { start: parts[0].start, end: parts[parts.length - 1].end };
  }

  alt(options: Fragment[]): Fragment {
    const start = this.node(), end = this.node();
    for (const o of options) {
      this.eps(start, o.start);
      this.eps(o.end, end);
    }
    return { start, end };
  }

  /** Between `min` and `max` (Infinity: no limit) copies of what `make` builds, one after another. */
  repeat(make: () => Fragment, min: number, max: number): Fragment {
    const start = this.node();
    let at = start;
    for (let i = 0; i < min; i++) {
      const f = make();
      this.eps(at, f.start);
      at = f.end;
    }
    if (max === Infinity) {
      const f = make();
      this.eps(at, f.start);
      this.eps(f.end, at);
      return { start, end: at };
    }
    const end = this.node();
    for (let i = min; i < max; i++) {
      const f = make();
      this.eps(at, end);
      this.eps(at, f.start);
      at = f.end;
    }
    this.eps(at, end);
    return { start, end };
  }

  /** A fragment nothing gets through (a $ref recursion cut at its depth). */
  private dead(): Fragment {
    return { start: this.node(), end: this.node() };
  }

  /** An optional single space. */
  private space(): Fragment {
    return this.repeat(() => this.bytes(" "), 0, 1);
  }

  /**
   * One character of a JSON string as written: printable ASCII but '"' and '\', an escape (\uXXXX
   * outside the surrogates, so every escape is one code point), or a well-formed UTF-8 sequence.
   */
  jsonChar(): Fragment {
    const n = () => this.node();
    const start = n(), end = n();
    const [esc, u1, u2, u2d, u3, u4, c1, x0, x1, x2, y0, y1, y2] = Array.from({ length: 13 }, n);
    const hex: [number, number][] = [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]];
    for (const [lo, hi] of [[0x20, 0x21], [0x23, 0x5b], [0x5d, 0x7e]]) this.edge(start, lo, hi, end);
    this.edge(start, 0x5c, 0x5c, esc);
    for (const c of '"\\/bfnrt') this.edge(esc, c.charCodeAt(0), c.charCodeAt(0), end);
    this.edge(esc, 0x75, 0x75, u1);
    for (const [lo, hi] of [[0x30, 0x39], [0x41, 0x43], [0x45, 0x46], [0x61, 0x63], [0x65, 0x66]]) this.edge(u1, lo, hi, u2);
    for (const d of [0x44, 0x64]) this.edge(u1, d, d, u2d); // \uD…: D800–DFFF are surrogates
    this.edge(u2d, 0x30, 0x37, u3);
    for (const [lo, hi] of hex) this.edge(u2, lo, hi, u3), this.edge(u3, lo, hi, u4), this.edge(u4, lo, hi, end);
    // UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
    this.edge(start, 0xc2, 0xdf, c1);
    this.edge(c1, 0x80, 0xbf, end);
    this.edge(start, 0xe0, 0xe0, x0);
    this.edge(x0, 0xa0, 0xbf, c1);
    this.edge(start, 0xe1, 0xec, x1);
    this.edge(start, 0xee, 0xef, x1);
    this.edge(x1, 0x80, 0xbf, c1);
    this.edge(start, 0xed, 0xed, x2);
    this.edge(x2, 0x80, 0x9f, c1);
    this.edge(start, 0xf0, 0xf0, y0);
    this.edge(y0, 0x90, 0xbf, x1);
    this.edge(start, 0xf1, 0xf3, y1);
    this.edge(y1, 0x80, 0xbf, x1);
    this.edge(start, 0xf4, 0xf4, y2);
    this.edge(y2, 0x80, 0x8f, x1);
    return { start, end };
  }

  private string(s: Record<string, unknown>, path: string): Fragment {
    const min = this.count(s, "minLength", path), max = this.count(s, "maxLength", path);
    if (min > max) throw new UnsupportedSchema(`${path}.minLength`, `${path}: minLength is above maxLength`);
    const bounded = s.minLength !== undefined || s.maxLength !== undefined;
    let body: Fragment;
    if (s.pattern !== undefined || s.format !== undefined) {
      const which = s.pattern !== undefined ? "pattern" : "format";
      if (bounded) throw new UnsupportedSchema(`${path}.${which}`, `${path}: ${which} together with minLength / maxLength is not supported`);
      if (s.pattern !== undefined && s.format !== undefined) throw new UnsupportedSchema(`${path}.format`, `${path}: pattern together with format is not supported`);
      let pattern = s.pattern;
      if (which === "format") {
        pattern = typeof s.format === "string" ? FORMATS[s.format] : undefined;
        if (pattern === undefined) throw new UnsupportedSchema(`${path}.format`, `${path}: format ${JSON.stringify(s.format)} is not supported (supported: ${Object.keys(FORMATS).join(", ")})`);
      }
      if (typeof pattern !== "string") throw new UnsupportedSchema(`${path}.pattern`, `${path}: pattern must be a string`);
      try {
        body = compilePattern(this, pattern);
      } catch (err) {
        if (err instanceof UnsupportedSchema) throw err;
        throw new UnsupportedSchema(`${path}.${which}`, `${path}.${which}: ${(err as Error).message}`);
      }
    } else body = this.repeat(() => this.jsonChar(), min, max);
    return this.seq(this.bytes('"'), body, this.bytes('"'));
  }

  /** A non-negative integer keyword (minLength, maxItems, ...); absent: 0 for a minimum, Infinity for a maximum. */
  private count(s: Record<string, unknown>, key: string, path: string): number {
    const v = s[key];
    if (v === undefined) return key.startsWith("min") ? 0 : Infinity;
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new UnsupportedSchema(`${path}.${key}`, `${path}: ${key} must be a non-negative integer`);
    return v as number;
  }

  /** A number's start: an optional minus, then "0" (to `zero`) or a digit 1–9 (to `int`); `end` is left for the caller to reach. */
  private signedLeadingDigit(): { start: number; zero: number; int: number; end: number } {
    const start = this.node(), sign = this.node(), zero = this.node(), int = this.node(), end = this.node();
    this.eps(start, sign);
    const minus = this.node();
    this.edge(start, 0x2d, 0x2d, minus);
    this.eps(minus, sign);
    this.edge(sign, 0x30, 0x30, zero);
    this.edge(sign, 0x31, 0x39, int);
    return { start, zero, int, end };
  }

  /** Any JSON number (no bounds). */
  private number(integer: boolean): Fragment {
    const { start, zero, int, end } = this.signedLeadingDigit();
    this.edge(int, 0x30, 0x39, int);
    this.eps(zero, end);
    this.eps(int, end);
    if (!integer) {
      const dot = this.node(), frac = this.node(), e = this.node(), esign = this.node(), exp = this.node();
      for (const from of [zero, int]) this.edge(from, 0x2e, 0x2e, dot);
      this.edge(dot, 0x30, 0x39, frac);
      this.edge(frac, 0x30, 0x39, frac);
      this.eps(frac, end);
      for (const from of [zero, int, frac]) this.edge(from, 0x65, 0x65, e), this.edge(from, 0x45, 0x45, e);
      this.edge(e, 0x2b, 0x2b, esign);
      this.edge(e, 0x2d, 0x2d, esign);
      this.eps(e, esign);
      this.edge(esign, 0x30, 0x39, exp);
      this.edge(exp, 0x30, 0x39, exp);
      this.eps(exp, end);
    }
    return { start, end };
  }

  /**
   * A number with minimum / maximum: supported when they bound no more than ±10^15 (what many
   * generators emit for "any"): written with at most 15 integer digits and no exponent, always inside.
   * Tighter bounds on a non-integer number are not supported (a 400 naming them).
   */
  private boundedNumber(s: Record<string, unknown>, path: string): Fragment {
    for (const key of ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]) {
      const v = s[key], lower = key === "minimum" || key === "exclusiveMinimum";
      if (v !== undefined && !(typeof v === "number" && (lower ? v <= -1e15 : v >= 1e15))) {
        throw new UnsupportedSchema(`${path}.${key}`, `${path}: ${key} ${JSON.stringify(v)} is not supported on a number (only bounds at or beyond ±10^15; integers take any bounds)`);
      }
    }
    const { start, zero, int, end } = this.signedLeadingDigit();
    let at = int;
    for (let i = 1; i < 15; i++) {
      const next = this.node();
      this.edge(at, 0x30, 0x39, next);
      this.eps(next, end);
      at = next;
    }
    this.eps(zero, end);
    this.eps(int, end);
    const dot = this.node(), frac = this.node(), done = this.node();
    this.edge(end, 0x2e, 0x2e, dot);
    this.edge(dot, 0x30, 0x39, frac);
    this.edge(frac, 0x30, 0x39, frac);
    this.eps(frac, done);
    this.eps(end, done);
    return { start, end: done };
  }

  /** An integer within the schema's bounds, exactly (bounds past the safe integers are clamped to them). */
  private integer(s: Record<string, unknown>, path: string): Fragment {
    const bound = (key: string) => {
      const v = s[key];
      if (v === undefined) return undefined;
      if (typeof v !== "number" || !Number.isFinite(v)) throw new UnsupportedSchema(`${path}.${key}`, `${path}: ${key} must be a finite number`);
      return v;
    };
    let lo = -Infinity, hi = Infinity;
    const min = bound("minimum"), max = bound("maximum"), xmin = bound("exclusiveMinimum"), xmax = bound("exclusiveMaximum");
    if (min !== undefined) lo = Math.max(lo, Math.ceil(min));
    if (xmin !== undefined) lo = Math.max(lo, Math.floor(xmin) + 1);
    if (max !== undefined) hi = Math.min(hi, Math.floor(max));
    if (xmax !== undefined) hi = Math.min(hi, Math.ceil(xmax) - 1);
    if (lo === -Infinity && hi === Infinity) return this.number(true);
    lo = Math.max(lo, -MAX_SAFE);
    hi = Math.min(hi, MAX_SAFE);
    if (lo > hi) throw new UnsupportedSchema(`${path}.minimum`, `${path}: no integer lies within the bounds`);
    const parts: Fragment[] = [];
    if (lo < 0) parts.push(this.seq(this.bytes("-"), this.natural(Math.max(1, -Math.min(hi, -1)), -lo)));
    if (hi >= 0) parts.push(this.natural(Math.max(lo, 0), hi));
    return this.alt(parts);
  }

  /** A non-negative integer in [a, b], without leading zeros. */
  private natural(a: number, b: number): Fragment {
    const parts: Fragment[] = [];
    const la = String(a).length, lb = String(b).length;
    for (let d = la; d <= lb; d++) {
      const lo = Math.max(a, d === 1 ? 0 : 10 ** (d - 1)), hi = Math.min(b, 10 ** d - 1);
      parts.push(this.digitsBetween(String(lo), String(hi)));
    }
    return this.alt(parts);
  }

  /** Decimal strings of one length between lo and hi (same length, lo ≤ hi). */
  private digitsBetween(lo: string, hi: string): Fragment {
    if (lo.length === 0) return this.bytes("");
    const l = lo.charCodeAt(0), h = hi.charCodeAt(0);
    const rest = lo.length - 1;
    const anyDigits = () => this.repeat(() => this.ranges([[0x30, 0x39]]), rest, rest);
    if (/^0*$/.test(lo.slice(1)) && /^9*$/.test(hi.slice(1))) return this.seq(this.ranges([[l, h]]), anyDigits());
    if (l === h) return this.seq(this.bytes(lo[0]), this.digitsBetween(lo.slice(1), hi.slice(1)));
    const options = [this.seq(this.bytes(lo[0]), this.digitsBetween(lo.slice(1), "9".repeat(rest)))];
    if (l + 1 <= h - 1) options.push(this.seq(this.ranges([[l + 1, h - 1]]), anyDigits()));
    options.push(this.seq(this.bytes(hi[0]), this.digitsBetween("0".repeat(rest), hi.slice(1))));
    return this.alt(options);
  }

  /** A $ref: a JSON pointer into this schema ("#", "#/$defs/Name", "#/definitions/Name", ...). */
  private ref(ref: unknown, path: string): Fragment {
    if (typeof ref !== "string" || !ref.startsWith("#")) throw new UnsupportedSchema(`${path}.$ref`, `${path}: only $refs into this schema ("#/$defs/...") are supported`);
    const tokens = ref === "#" ? [] : ref.slice(1).split("/").slice(1).map((t) => decodeURIComponent(t).replace(/~1/g, "/").replace(/~0/g, "~"));
    if (ref !== "#" && !ref.startsWith("#/")) throw new UnsupportedSchema(`${path}.$ref`, `${path}: $ref ${ref} is not a JSON pointer`);
    let target: unknown = this.root;
    for (const t of tokens) {
      target = typeof target === "object" && target !== null ? (target as Record<string, unknown>)[t] : undefined;
      if (target === undefined) throw new UnsupportedSchema(`${path}.$ref`, `${path}: $ref ${ref} points to nothing`);
    }
    const depth = this.open.get(ref) ?? 0;
    if (depth >= MAX_REF_DEPTH) return this.dead();
    this.open.set(ref, depth + 1);
    try {
      return this.value(target, ["schema", ...tokens].join("."));
    } finally {
      this.open.set(ref, depth);
    }
  }

  private value(schema: unknown, path: string): Fragment {
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) throw new UnsupportedSchema(path, `${path}: a schema must be an object`);
    const s = schema as Record<string, unknown>;
    for (const key of Object.keys(s)) {
      if (!KNOWN.has(key) && !ANNOTATIONS.has(key)) throw new UnsupportedSchema(`${path}.${key}`, `${path}: the keyword "${key}" is not supported (supported: ${KEYWORDS.join(", ")})`);
    }
    const only = (key: string) => {
      const other = Object.keys(s).find((k) => k !== key && KNOWN.has(k));
      if (other) throw new UnsupportedSchema(`${path}.${other}`, `${path}: "${other}" beside "${key}" is not supported`);
    };
    if ("$ref" in s) {
      only("$ref");
      return this.ref(s.$ref, path);
    }
    if ("allOf" in s) {
      only("allOf");
      if (!Array.isArray(s.allOf) || s.allOf.length !== 1) throw new UnsupportedSchema(`${path}.allOf`, `${path}: only an allOf of one schema is supported`);
      return this.value(s.allOf[0], `${path}.allOf.0`);
    }
    if ("const" in s) return this.bytes(JSON.stringify(s.const));
    if ("enum" in s) {
      if (!Array.isArray(s.enum) || s.enum.length === 0) throw new UnsupportedSchema(`${path}.enum`, `${path}.enum must be a non-empty array`);
      return this.alt(s.enum.map((v) => this.bytes(JSON.stringify(v))));
    }
    if ("anyOf" in s) {
      if (!Array.isArray(s.anyOf) || s.anyOf.length === 0) throw new UnsupportedSchema(`${path}.anyOf`, `${path}.anyOf must be a non-empty array`);
      return this.alt(s.anyOf.map((sub, i) => this.value(sub, `${path}.anyOf.${i}`)));
    }
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (types.length === 0 || types.some((t) => typeof t !== "string")) throw new UnsupportedSchema(`${path}.type`, `${path}: "type" is required (or const, enum, anyOf, $ref)`);
    return this.alt((types as string[]).map((t) => this.typed(t, s, path)));
  }

  private typed(type: string, s: Record<string, unknown>, path: string): Fragment {
    const bounded = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"].some((k) => s[k] !== undefined);
    switch (type) {
      case "string":
        return this.string(s, path);
      case "number":
        return bounded ? this.boundedNumber(s, path) : this.number(false);
      case "integer":
        return this.integer(s, path);
      case "boolean":
        return this.alt([this.bytes("true"), this.bytes("false")]);
      case "null":
        return this.bytes("null");
      case "array":
        return this.array(s, path);
      case "object":
        return this.object(s, path);
      default:
        throw new UnsupportedSchema(`${path}.type`, `${path}: type "${type}" is not supported`);
    }
  }

  /** "[" items "]", between minItems and maxItems of them, comma-separated. */
  private array(s: Record<string, unknown>, path: string): Fragment {
    if (typeof s.items !== "object" || s.items === null || Array.isArray(s.items)) throw new UnsupportedSchema(`${path}.items`, `${path}: an array needs "items" (one schema)`);
    const min = this.count(s, "minItems", path), max = this.count(s, "maxItems", path);
    if (min > max) throw new UnsupportedSchema(`${path}.minItems`, `${path}: minItems is above maxItems`);
    const item = () => this.value(s.items, `${path}.items`);
    const more = () => this.seq(this.bytes(","), this.space(), item());
    const open = this.bytes("["), close = this.bytes("]");
    if (max === 0) return this.seq(open, close);
    const some = this.seq(item(), this.repeat(more, Math.max(0, min - 1), max - 1));
    return this.seq(open, min === 0 ? this.alt([some, this.bytes("")]) : some, close);
  }

  /** Properties in schema order; required ones always present, the others optional; commas between. */
  private object(s: Record<string, unknown>, path: string): Fragment {
    const props = s.properties;
    if (typeof props !== "object" || props === null || Array.isArray(props)) {
      throw new UnsupportedSchema(`${path}.properties`, `${path}: an object needs "properties" (free-form objects are not supported; {} for none)`);
    }
    if (s.additionalProperties !== undefined && s.additionalProperties !== false) {
      throw new UnsupportedSchema(`${path}.additionalProperties`, `${path}: only additionalProperties: false is supported`);
    }
    const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
    for (const r of required) if (!(r in props)) throw new UnsupportedSchema(`${path}.required`, `${path}: required property "${r}" is not in properties`);
    const open = this.bytes("{"), close = this.bytes("}");
    // Two lanes: nothing written yet (the next property has no comma before it), or something written.
    let none: number | null = open.end;
    let some: number | null = null;
    for (const [key, sub] of Object.entries(props as Record<string, unknown>)) {
      const field = (withComma: boolean) => this.seq(...(withComma ? [this.bytes(","), this.space()] : []), this.bytes(JSON.stringify(key)), this.bytes(":"), this.space(),
        this.value(sub, `${path}.properties.${key}`));
      const nextSome = this.node();
      if (none !== null) {
        const fromNone = field(false);
        this.eps(none, fromNone.start);
        this.eps(fromNone.end, nextSome);
      }
      if (some !== null) {
        const fromSome = field(true);
        this.eps(some, fromSome.start);
        this.eps(fromSome.end, nextSome);
      }
      if (required.has(key)) none = null; // nothing written is no longer possible
      else if (some !== null) this.eps(some, nextSome);
      some = nextSome;
    }
    if (none !== null) this.eps(none, close.start);
    if (some !== null) this.eps(some, close.start);
    return { start: open.start, end: close.end };
  }

  /** Fewest bytes to `accept` from every node: a search backwards, layer by layer (ε costs 0, a byte 1). */
  private distances(): Float64Array {
    const n = this.nodes.length;
    const dist = new Float64Array(n).fill(Infinity);
    const back: { from: number; cost: number }[][] = Array.from({ length: n }, () => []);
    this.nodes.forEach((node, from) => {
      for (const to of node.eps) back[to].push({ from, cost: 0 });
      for (const e of node.edges) back[e.to].push({ from, cost: 1 });
    });
    dist[this.accept] = 0;
    let layer = [this.accept];
    for (let d = 0; layer.length; d++) {
      const next: number[] = [];
      while (layer.length) {
        const at = layer.pop()!;
        if (dist[at] !== d) continue; // reached more cheaply since it was queued
        for (const { from, cost } of back[at]) {
          if (d + cost < dist[from]) {
            dist[from] = d + cost;
            (cost ? next : layer).push(from);
          }
        }
      }
      layer = next;
    }
    return dist;
  }

  /** The ε-closure of a set of nodes, those that can still reach `accept`, sorted. */
  closure(set: number[]): number[] {
    const seen = new Set(set);
    const todo = [...set];
    while (todo.length) for (const n of this.nodes[todo.pop()!].eps) if (!seen.has(n)) seen.add(n), todo.push(n);
    return [...seen].filter((n) => this.dist[n] < Infinity).sort((a, b) => a - b);
  }

  stepSet(set: number[], b: number): number[] | null {
    const next: number[] = [];
    for (const n of set) for (const e of this.nodes[n].edges) if (b >= e.lo && b <= e.hi) next.push(e.to);
    if (!next.length) return null;
    const closed = this.closure(next);
    return closed.length ? closed : null;
  }

  distanceOf(set: number[]): number {
    let d = Infinity;
    for (const n of set) if (this.dist[n] < d) d = this.dist[n];
    return d;
  }
}

/** The automaton as a grammar for the token masker (states: sorted sets of automaton nodes). */
export function schemaGrammar(schema: unknown): { start: number[]; step(s: number[], b: number): number[] | null; key(s: number[]): string; complete(s: number[]): boolean; distance(s: number[]): number } {
  const a = new SchemaAutomaton(schema);
  return {
    start: a.closure([a.start]),
    step: (s, b) => a.stepSet(s, b),
    key: (s) => s.join(","),
    complete: (s) => s.includes(a.accept),
    distance: (s) => a.distanceOf(s),
  };
}
