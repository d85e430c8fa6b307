// JSON Schema's `pattern` (an ECMA-262 regular expression, unanchored) compiled into the schema
// automaton as the body of a JSON string, each character as JSON writes it ('"' as \", a newline as
// \n, ...). The subset: literals, escapes (\d \w \s and their complements, \t \n \r \f \v \0,
// \xHH, \uHHHH, escaped punctuation), classes with ranges and negation, ".", groups ((...),
// (?:...), (?<name>...)), alternation, the quantifiers ? * + {n} {n,} {n,m} (lazy forms too), and ^ /
// $ at the start / end of the pattern or of its top-level alternatives. Anything else — lookaround,
// backreferences, \b, \p{...} — is an error (the schema's 400 names the pattern's path).
//
// The automaton writes a subset of the pattern's matches, never a string outside them: "." and
// negated classes (and \D \W \S) write ASCII characters only (what they match beyond ASCII depends on
// Unicode tables not carried here), and a class's non-ASCII members are written only up to the first
// 256 code points.
import type { Fragment } from "./json-schema.js";

/** The automaton-building operations the pattern compiler uses (SchemaAutomaton has them). */
export interface AutomatonBuilder {
  node(): number;
  edge(from: number, lo: number, hi: number, to: number): void;
  eps(from: number, to: number): void;
  bytes(text: string | Uint8Array): Fragment;
  seq(...parts: Fragment[]): Fragment;
  alt(options: Fragment[]): Fragment;
  repeat(make: () => Fragment, min: number, max: number): Fragment;
  /** Any one character of a JSON string as written. */
  jsonChar(): Fragment;
}

/** The string formats supported, as patterns in the subset above (each one a subset of what its RFC and zod's check allow). */
const DATE = "\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|02-(?:0[1-9]|1\\d|2[0-8]))";
export const FORMATS: Record<string, string> = {
  // Full dates; February stops at the 28th (so no leap-year rule is needed for every date written to be real).
  date: `^${DATE}$`,
  // UTC with "Z" (zod's .datetime() refuses offsets unless asked), milliseconds optional.
  "date-time": `^${DATE}T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,3})?Z$`,
  // RFC 9562, lowercase, a version 1–8 and the RFC variant (what zod's .uuid() checks).
  uuid: "^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
  // Dot-atoms on both sides of "@", labels of at most 63 characters, a top-level domain of letters.
  email: "^[A-Za-z0-9_+-]+(?:\\.[A-Za-z0-9_+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}$",
};

/** A set of characters: ASCII exactly, and some non-ASCII code points. */
interface CharSet {
  ascii: Uint8Array; // 128 flags
  extra: Set<number>;
}

type Ast =
  | { kind: "set"; set: CharSet }
  | { kind: "seq"; items: Ast[] }
  | { kind: "alt"; options: Ast[] }
  | { kind: "repeat"; node: Ast; min: number; max: number }
  | { kind: "anchor"; which: "^" | "$" };

const MAX_EXTRA = 256;
const MAX_COUNT = 1000;

const emptySet = (): CharSet => ({ ascii: new Uint8Array(128), extra: new Set() });
function rangeSet(set: CharSet, lo: number, hi: number): CharSet {
  for (let c = lo; c <= hi; c++) {
    if (c < 128) set.ascii[c] = 1;
    else if (set.extra.size < MAX_EXTRA && (c < 0xd800 || c > 0xdfff)) set.extra.add(c);
    else if (c >= 128 && set.extra.size >= MAX_EXTRA) break;
  }
  return set;
}
/** The ASCII complement (non-ASCII members are left out: see the file comment). */
function complement(set: CharSet): CharSet {
  const out = emptySet();
  for (let c = 0; c < 128; c++) out.ascii[c] = set.ascii[c] ? 0 : 1;
  return out;
}
function union(into: CharSet, from: CharSet): void {
  for (let c = 0; c < 128; c++) if (from.ascii[c]) into.ascii[c] = 1;
  for (const c of from.extra) if (into.extra.size < MAX_EXTRA) into.extra.add(c);
}

const DIGIT = () => rangeSet(emptySet(), 0x30, 0x39);
const WORD = () => rangeSet(rangeSet(rangeSet(rangeSet(emptySet(), 0x30, 0x39), 0x41, 0x5a), 0x61, 0x7a), 0x5f, 0x5f);
const SPACE = () => {
  const s = emptySet();
  for (const c of [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]) s.ascii[c] = 1;
  return s;
};

class Parser {
  private at = 0;
  constructor(private readonly src: string) {}

  parse(): Ast {
    const ast = this.alternation();
    if (this.at < this.src.length) throw new Error(`unexpected ")" at ${this.at}`);
    return ast;
  }

  private peek(): string | undefined {
    return this.src[this.at];
  }

  private alternation(): Ast {
    const options = [this.sequence()];
    while (this.peek() === "|") {
      this.at++;
      options.push(this.sequence());
    }
    return options.length === 1 ? options[0] : { kind: "alt", options };
  }

  private sequence(): Ast {
    const items: Ast[] = [];
    while (this.at < this.src.length && this.peek() !== "|" && this.peek() !== ")") {
      const atom = this.atom();
      items.push(this.quantified(atom));
    }
    return { kind: "seq", items };
  }

  private quantified(atom: Ast): Ast {
    let node = atom;
    for (;;) {
      const c = this.peek();
      let min: number, max: number;
      if (c === "?") [min, max] = [0, 1];
      else if (c === "*") [min, max] = [0, Infinity];
      else if (c === "+") [min, max] = [1, Infinity];
      else if (c === "{") {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.at));
        if (!m) return node; // a literal "{" (as JavaScript reads it)
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
        if (max < min) throw new Error(`the quantifier ${m[0]} has its numbers out of order`);
        if (min > MAX_COUNT || (max !== Infinity && max > MAX_COUNT)) throw new Error(`the quantifier ${m[0]} is over ${MAX_COUNT}`);
        this.at += m[0].length - 1;
      } else return node;
      this.at++;
      if (this.peek() === "?") this.at++; // lazy: the same language
      if (node.kind === "anchor") throw new Error("a quantifier after an anchor");
      if (node.kind === "repeat") throw new Error("a quantifier after a quantifier");
      node = { kind: "repeat", node, min, max };
    }
  }

  private atom(): Ast {
    const c = this.src[this.at];
    if (c === "^" || c === "$") {
      this.at++;
      return { kind: "anchor", which: c };
    }
    if (c === "(") {
      this.at++;
      if (this.src.startsWith("?:", this.at)) this.at += 2;
      else if (/^\?<[A-Za-z_$][\w$]*>/.test(this.src.slice(this.at))) this.at = this.src.indexOf(">", this.at) + 1;
      else if (this.peek() === "?") throw new Error("lookaround and other (?...) groups are not supported");
      const inner = this.alternation();
      if (this.peek() !== ")") throw new Error("a group is not closed");
      this.at++;
      return inner;
    }
    if (c === ")") throw new Error(`unexpected ")" at ${this.at}`);
    if (c === "[") return { kind: "set", set: this.charClass() };
    if (c === ".") {
      this.at++;
      const s = emptySet();
      s.ascii[0x0a] = s.ascii[0x0d] = 1;
      return { kind: "set", set: complement(s) };
    }
    if (c === "\\") return { kind: "set", set: this.escape(false) };
    if (c === "*" || c === "+" || c === "?") throw new Error(`nothing to repeat before "${c}"`);
    return { kind: "set", set: this.literal() };
  }

  /** One literal character (a whole code point). */
  private literal(): CharSet {
    const cp = this.src.codePointAt(this.at)!;
    this.at += cp > 0xffff ? 2 : 1;
    return rangeSet(emptySet(), cp, cp);
  }

  /** After "\": a class escape, or one character. `inClass`: \b is a backspace there. */
  private escape(inClass: boolean): CharSet {
    this.at++;
    const c = this.src[this.at];
    if (c === undefined) throw new Error("the pattern ends with \\");
    this.at++;
    const one = (cp: number) => rangeSet(emptySet(), cp, cp);
    switch (c) {
      case "d": return DIGIT();
      case "D": return complement(DIGIT());
      case "w": return WORD();
      case "W": return complement(WORD());
      case "s": return SPACE();
      case "S": return complement(SPACE());
      case "t": return one(0x09);
      case "n": return one(0x0a);
      case "r": return one(0x0d);
      case "f": return one(0x0c);
      case "v": return one(0x0b);
      case "0": return one(0);
      case "x": case "u": {
        const digits = c === "x" ? 2 : 4;
        const hex = this.src.slice(this.at, this.at + digits);
        if (!new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(hex)) throw new Error(`\\${c} needs ${digits} hex digits`);
        this.at += digits;
        return one(parseInt(hex, 16));
      }
    }
    if (inClass && c === "b") return one(0x08);
    if (/[A-Za-z0-9]/.test(c)) throw new Error(`the escape \\${c} is not supported`);
    this.at--;
    return this.literal(); // escaped punctuation: itself
  }

  private charClass(): CharSet {
    this.at++;
    const negated = this.peek() === "^";
    if (negated) this.at++;
    const set = emptySet();
    while (this.peek() !== "]") { // "[]" is the empty class and "[^]" any character, as in JavaScript
      if (this.at >= this.src.length) throw new Error("a character class is not closed");
      const item = this.classAtom();
      if (item.single !== undefined && this.peek() === "-" && this.src[this.at + 1] !== "]" && this.at + 1 < this.src.length) {
        this.at++;
        const to = this.classAtom();
        if (to.single === undefined) throw new Error("a class range must be between two characters");
        if (to.single < item.single) throw new Error("a class range is out of order");
        rangeSet(set, item.single, to.single);
      } else union(set, item.set);
    }
    this.at++;
    return negated ? complement(set) : set;
  }

  private classAtom(): { set: CharSet; single?: number } {
    if (this.peek() === "\\") {
      const start = this.at;
      const set = this.escape(true);
      const shorthand = /^\\[dDwWsS]$/.test(this.src.slice(start, this.at));
      const members = [...set.ascii.keys()].filter((c) => set.ascii[c]).concat([...set.extra]);
      return shorthand || members.length !== 1 ? { set } : { set, single: members[0] };
    }
    const cp = this.src.codePointAt(this.at)!;
    const set = this.literal();
    return { set, single: cp };
  }
}

/** One character of the set, as JSON writes it inside a string. */
function charFragment(b: AutomatonBuilder, set: CharSet): Fragment {
  const start = b.node(), end = b.node();
  const named: Record<number, string> = { 0x22: '\\"', 0x5c: "\\\\", 0x08: "\\b", 0x0c: "\\f", 0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t" };
  const via = (text: string) => {
    const f = b.bytes(text);
    b.eps(start, f.start);
    b.eps(f.end, end);
  };
  for (let c = 0; c < 128; c++) {
    if (!set.ascii[c]) continue;
    if (named[c]) via(named[c]);
    else if (c < 0x20 || c === 0x7f) via(`\\u${c.toString(16).padStart(4, "0")}`);
    else {
      let hi = c; // a run of plain characters: one edge
      while (hi + 1 < 0x7f && set.ascii[hi + 1] && !named[hi + 1]) hi++;
      b.edge(start, c, hi, end);
      c = hi;
    }
  }
  for (const cp of set.extra) via(String.fromCodePoint(cp));
  return { start, end };
}

function compileAst(b: AutomatonBuilder, ast: Ast): Fragment {
  switch (ast.kind) {
    case "set": return charFragment(b, ast.set);
    case "seq": return b.seq(...ast.items.map((i) => compileAst(b, i)));
    case "alt": return b.alt(ast.options.map((o) => compileAst(b, o)));
    case "repeat": return b.repeat(() => compileAst(b, ast.node), ast.min, ast.max);
    case "anchor": throw new Error("^ and $ are supported only at the start and end of the pattern");
  }
}

/**
 * The body of a JSON string (between its quotes) whose value matches `pattern`. Unanchored ends take
 * any characters, as JSON Schema's patterns match anywhere in the string.
 */
export function compilePattern(b: AutomatonBuilder, pattern: string): Fragment {
  const ast = new Parser(pattern).parse();
  const options = ast.kind === "alt" ? ast.options : [ast];
  const anyChars = () => b.repeat(() => b.jsonChar(), 0, Infinity);
  return b.alt(options.map((o) => {
    const items = o.kind === "seq" ? [...o.items] : [o];
    const anchoredStart = items[0]?.kind === "anchor" && items[0].which === "^";
    if (anchoredStart) items.shift();
    const last = items[items.length - 1];
    const anchoredEnd = last?.kind === "anchor" && last.which === "$";
    if (anchoredEnd) items.pop();
    const body = items.map((i) => compileAst(b, i));
    return b.seq(...(anchoredStart ? [] : [anyChars()]), ...body, ...(anchoredEnd ? [] : [anyChars()]));
  }));
}
