// JSON Schema → a byte-level automaton for constrained decoding (OpenAI's json_schema response
// format). The supported subset compiles to a nondeterministic automaton (Thompson's construction):
// object with properties (in schema order; required ones always, others optional) and
// additionalProperties false, string, number, integer, boolean, null, enum, const, array with items,
// anyOf and type lists, nested. A keyword outside the subset is an error naming its path — never
// silently unconstrained output. Output is compact JSON with at most one space after ":" and ",".

export class UnsupportedSchema extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

/** An automaton node: byte transitions (by a predicate over the byte) and ε-edges. */
interface Node {
  edges: { test: (b: number) => boolean; to: number }[];
  eps: number[];
}

/** A fragment of the automaton: from `start`, reaching `end` has read one value. */
interface Fragment {
  start: number;
  end: number;
}

const MAX_NODES = 50_000;
const ANNOTATIONS = new Set(["title", "description", "$schema", "$id", "default", "examples", "$comment", "strict"]);

export class SchemaAutomaton {
  readonly nodes: Node[] = [];
  readonly start: number;
  readonly accept: number;

  constructor(schema: unknown) {
    const f = this.value(schema, "schema");
    this.start = f.start;
    this.accept = f.end;
  }

  private node(): number {
    if (this.nodes.length >= MAX_NODES) throw new UnsupportedSchema("schema", `the schema is too large to compile (over ${MAX_NODES} states)`);
    this.nodes.push({ edges: [], eps: [] });
    return this.nodes.length - 1;
  }

  private edge(from: number, test: (b: number) => boolean, to: number): void {
    this.nodes[from].edges.push({ test, to });
  }

  private eps(from: number, to: number): void {
    this.nodes[from].eps.push(to);
  }

  /** A fixed byte string. */
  private bytes(text: string): Fragment {
    const start = this.node();
    let at = start;
    for (const b of new TextEncoder().encode(text)) {
      const next = this.node();
      this.edge(at, (x) => x === b, next);
      at = next;
    }
    return { start, end: at };
  }

  private seq(...parts: Fragment[]): Fragment {
    for (let i = 1; i < parts.length; i++) this.eps(parts[i - 1].end, parts[i].start);
    return { start: parts[0].start, end: parts[parts.length - 1].end };
  }

  private alt(options: Fragment[]): Fragment {
    const start = this.node(), end = this.node();
    for (const o of options) {
      this.eps(start, o.start);
      this.eps(o.end, end);
    }
    return { start, end };
  }

  private optional(f: Fragment): Fragment {
    this.eps(f.start, f.end);
    return f;
  }

  /** An optional single space. */
  private space(): Fragment {
    return this.optional(this.bytes(" "));
  }

  private string(): Fragment {
    const start = this.node(), body = this.node(), esc = this.node(), end = this.node();
    this.edge(start, (b) => b === 0x22, body);
    this.edge(body, (b) => b >= 0x20 && b !== 0x22 && b !== 0x5c && b !== 0x7f, body);
    this.edge(body, (b) => b === 0x5c, esc);
    this.edge(esc, (b) => '"\\/bfnrt'.includes(String.fromCharCode(b)), body);
    let hex = esc;
    const isHex = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
    const u = this.node();
    this.edge(esc, (b) => b === 0x75, u);
    hex = u;
    for (let i = 0; i < 4; i++) {
      const next = i === 3 ? body : this.node();
      this.edge(hex, isHex, next);
      hex = next;
    }
    this.edge(body, (b) => b === 0x22, end);
    return { start, end };
  }

  /** A number; with `maxDigits`, at most that many integer digits and no exponent (a bounded range). */
  private number(integer: boolean, maxDigits = 0): Fragment {
    const digit = (b: number) => b >= 0x30 && b <= 0x39;
    const start = this.node(), sign = this.node(), zero = this.node(), int = this.node(), end = this.node();
    this.eps(start, sign);
    const minus = this.node();
    this.edge(start, (b) => b === 0x2d, minus);
    this.eps(minus, sign);
    this.edge(sign, (b) => b === 0x30, zero);
    this.edge(sign, (b) => b >= 0x31 && b <= 0x39, int);
    if (maxDigits) {
      // After the first digit, up to maxDigits − 1 more; the integer part may end after any of them.
      let at = int;
      for (let i = 1; i < maxDigits; i++) {
        const next = this.node();
        this.edge(at, digit, next);
        this.eps(next, end);
        at = next;
      }
    } else this.edge(int, digit, int);
    this.eps(zero, end);
    this.eps(int, end);
    if (maxDigits && !integer) {
      // A fraction after any integer-part node; no exponent.
      const dot = this.node(), frac = this.node(), done = this.node();
      this.edge(end, (b) => b === 0x2e, dot);
      this.edge(dot, digit, frac);
      this.edge(frac, digit, frac);
      this.eps(frac, done);
      this.eps(end, done);
      return { start, end: done };
    }
    if (!integer) {
      const dot = this.node(), frac = this.node(), e = this.node(), esign = this.node(), exp = this.node();
      for (const from of [zero, int]) this.edge(from, (b) => b === 0x2e, dot);
      this.edge(dot, digit, frac);
      this.edge(frac, digit, frac);
      this.eps(frac, end);
      for (const from of [zero, int, frac]) this.edge(from, (b) => b === 0x65 || b === 0x45, e);
      this.edge(e, (b) => b === 0x2b || b === 0x2d, esign);
      this.eps(e, esign);
      this.edge(esign, digit, exp);
      this.edge(exp, digit, exp);
      this.eps(exp, end);
    }
    return { start, end };
  }

  private value(schema: unknown, path: string): Fragment {
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) throw new UnsupportedSchema(path, `${path}: a schema must be an object`);
    const s = schema as Record<string, unknown>;
    const known = new Set(["type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "minimum", "maximum"]);
    for (const key of Object.keys(s)) {
      if (!known.has(key) && !ANNOTATIONS.has(key)) throw new UnsupportedSchema(`${path}.${key}`, `${path}: the keyword "${key}" is not supported (supported: ${[...known].join(", ")})`);
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
    if (types.length === 0 || types.some((t) => typeof t !== "string")) throw new UnsupportedSchema(`${path}.type`, `${path}: "type" is required (or const, enum, anyOf)`);
    return this.alt((types as string[]).map((t) => this.typed(t, s, path)));
  }

  private typed(type: string, s: Record<string, unknown>, path: string): Fragment {
    switch (type) {
      case "string":
        return this.string();
      case "number":
        return this.number(false, this.safeRange(s, path));
      case "integer":
        return this.number(true, this.safeRange(s, path));
      case "boolean":
        return this.alt([this.bytes("true"), this.bytes("false")]);
      case "null":
        return this.bytes("null");
      case "array": {
        if (typeof s.items !== "object" || s.items === null) throw new UnsupportedSchema(`${path}.items`, `${path}: an array needs "items"`);
        const open = this.bytes("["), close = this.bytes("]");
        const first = this.value(s.items, `${path}.items`);
        const loop = this.node();
        this.eps(open.end, close.start); // []
        this.eps(open.end, first.start);
        this.eps(first.end, loop);
        this.eps(loop, close.start);
        const more = this.seq(this.bytes(","), this.space(), this.value(s.items, `${path}.items`));
        this.eps(loop, more.start);
        this.eps(more.end, loop);
        return { start: open.start, end: close.end };
      }
      case "object":
        return this.object(s, path);
      default:
        throw new UnsupportedSchema(`${path}.type`, `${path}: type "${type}" is not supported`);
    }
  }

  /**
   * minimum / maximum: supported when they bound no more than the safe-integer range (what zod's
   * .int() and many generators emit): numbers are then written with at most 15 integer digits and no
   * exponent, always inside it. Tighter bounds are not supported (a 400 naming them).
   */
  private safeRange(s: Record<string, unknown>, path: string): number {
    const lo = s.minimum, hi = s.maximum;
    if (lo === undefined && hi === undefined) return 0;
    const loose = (v: unknown, sign: number) => v === undefined || (typeof v === "number" && sign * v >= 1e15);
    if (!loose(lo, -1)) throw new UnsupportedSchema(`${path}.minimum`, `${path}: minimum ${lo} is not supported (only bounds at or beyond ±10^15)`);
    if (!loose(hi, 1)) throw new UnsupportedSchema(`${path}.maximum`, `${path}: maximum ${hi} is not supported (only bounds at or beyond ±10^15)`);
    return 15;
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
    let none = open.end;
    let some: number | null = null;
    for (const [key, sub] of Object.entries(props as Record<string, unknown>)) {
      const field = (withComma: boolean) => this.seq(...(withComma ? [this.bytes(","), this.space()] : []), this.bytes(JSON.stringify(key)), this.bytes(":"), this.space(),
        this.value(sub, `${path}.properties.${key}`));
      const fromNone = field(false);
      this.eps(none, fromNone.start);
      const nextSome = this.node();
      this.eps(fromNone.end, nextSome);
      if (some !== null) {
        const fromSome = field(true);
        this.eps(some, fromSome.start);
        this.eps(fromSome.end, nextSome);
      }
      if (required.has(key)) {
        none = this.node(); // unreachable without writing this property
        some = nextSome;
      } else {
        const skipNone = none;
        if (some !== null) this.eps(some, nextSome);
        some = nextSome;
        none = skipNone;
      }
    }
    this.eps(none, close.start);
    if (some !== null) this.eps(some, close.start);
    return { start: open.start, end: close.end };
  }

  /** The ε-closure of a set of nodes, sorted. */
  closure(set: number[]): number[] {
    const seen = new Set(set);
    const todo = [...set];
    while (todo.length) for (const n of this.nodes[todo.pop()!].eps) if (!seen.has(n)) seen.add(n), todo.push(n);
    return [...seen].sort((a, b) => a - b);
  }

  stepSet(set: number[], b: number): number[] | null {
    const next: number[] = [];
    for (const n of set) for (const e of this.nodes[n].edges) if (e.test(b)) next.push(e.to);
    return next.length ? this.closure(next) : null;
  }
}

/** The automaton as a grammar for the token masker (states: sorted sets of automaton nodes). */
export function schemaGrammar(schema: unknown): { start: number[]; step(s: number[], b: number): number[] | null; key(s: number[]): string; complete(s: number[]): boolean } {
  const a = new SchemaAutomaton(schema);
  return {
    start: a.closure([a.start]),
    step: (s, b) => a.stepSet(s, b),
    key: (s) => s.join(","),
    complete: (s) => s.includes(a.accept),
  };
}
