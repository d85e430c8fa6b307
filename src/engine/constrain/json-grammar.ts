// A byte-level pushdown automaton for JSON (RFC 8259), for constrained decoding: step(state, byte)
// gives the next state or null when the byte cannot continue any JSON text. States are small
// immutable objects, so the token masker can explore many continuations from one state. The top
// level must be an object (OpenAI's json_object mode). Whitespace between tokens is limited to a few
// bytes in a row, so sampling cannot wander off into endless blank space.

const enum Mode {
  Top, // before the top-level object: whitespace, then "{"
  Value, // a value is due
  ObjectStart, // after "{": a key or "}"
  Key, // after ",": a key is due
  Colon, // after a key
  ArrayStart, // after "[": a value or "]"
  After, // after a value: "," or the container's close
  String, // inside a string (aux: 1 when it is a key)
  Escape, // after "\" in a string
  Hex, // inside \uXXXX (aux: digits left; bit 8: key)
  Utf8, // inside a multi-byte character (aux: continuation bytes left; bit 8: key)
  Number, // inside a number (aux: NumberPart)
  Literal, // inside true / false / null (aux: index into LITERALS of the next byte)
  Done, // the top-level value is complete
}

/** Where a number is: what may come next. */
const enum NumberPart { Minus, Zero, Int, Dot, Frac, E, ESign, Exp }

const LITERALS = "true\0false\0null\0";
const MAX_WHITESPACE = 3;

export interface JsonState {
  readonly mode: Mode;
  readonly aux: number;
  /** Open containers, innermost last: "{" or "[". */
  readonly stack: string;
  /** Whitespace bytes in a row so far. */
  readonly ws: number;
}

export const JSON_START: JsonState = { mode: Mode.Top, aux: 0, stack: "", ws: 0 };

const state = (mode: Mode, stack: string, aux = 0): JsonState => ({ mode, aux, stack, ws: 0 });
const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

function whitespace(s: JsonState): JsonState | null {
  return s.ws < MAX_WHITESPACE ? { ...s, ws: s.ws + 1 } : null;
}

/** After a value ends: back to the container, or done at the top level. */
function afterValue(stack: string): JsonState {
  return stack === "" ? state(Mode.Done, "") : state(Mode.After, stack);
}

/** The start of a value. */
function value(s: JsonState, b: number): JsonState | null {
  if (isWs(b)) return whitespace(s);
  if (b === 0x7b) return state(Mode.ObjectStart, s.stack + "{");
  if (b === 0x5b) return state(Mode.ArrayStart, s.stack + "[");
  if (b === 0x22) return state(Mode.String, s.stack, 0);
  if (b === 0x2d) return state(Mode.Number, s.stack, NumberPart.Minus);
  if (b === 0x30) return state(Mode.Number, s.stack, NumberPart.Zero);
  if (isDigit(b)) return state(Mode.Number, s.stack, NumberPart.Int);
  const lit = b === 0x74 ? 1 : b === 0x66 ? 6 : b === 0x6e ? 12 : -1; // t, f, n: index of their next byte
  return lit >= 0 ? state(Mode.Literal, s.stack, lit) : null;
}

/** The next state after one byte, or null if no JSON text continues this way. */
export function step(s: JsonState, b: number): JsonState | null {
  switch (s.mode) {
    case Mode.Top:
      if (isWs(b)) return whitespace(s);
      return b === 0x7b ? state(Mode.ObjectStart, "{") : null;
    case Mode.Value:
      return value(s, b);
    case Mode.ArrayStart:
      if (b === 0x5d) return afterValue(s.stack.slice(0, -1));
      return value(s, b);
    case Mode.ObjectStart:
      if (b === 0x7d) return afterValue(s.stack.slice(0, -1));
    // falls through: otherwise a key
    case Mode.Key:
      if (isWs(b)) return whitespace(s);
      return b === 0x22 ? state(Mode.String, s.stack, 1) : null;
    case Mode.Colon:
      if (isWs(b)) return whitespace(s);
      return b === 0x3a ? state(Mode.Value, s.stack) : null;
    case Mode.After: {
      if (isWs(b)) return whitespace(s);
      const top = s.stack[s.stack.length - 1];
      if (b === 0x2c) return state(top === "{" ? Mode.Key : Mode.Value, s.stack);
      if ((b === 0x7d && top === "{") || (b === 0x5d && top === "[")) return afterValue(s.stack.slice(0, -1));
      return null;
    }
    case Mode.String: {
      if (b === 0x22) return s.aux === 1 ? state(Mode.Colon, s.stack) : afterValue(s.stack);
      if (b === 0x5c) return state(Mode.Escape, s.stack, s.aux);
      if (b < 0x20) return null; // control characters must be escaped
      if (b < 0x80) return s;
      const more = b >= 0xf0 && b <= 0xf4 ? 3 : b >= 0xe0 ? 2 : b >= 0xc2 && b < 0xe0 ? 1 : -1;
      return more > 0 && b <= 0xf4 ? state(Mode.Utf8, s.stack, more | (s.aux << 8)) : null;
    }
    case Mode.Utf8: {
      if (b < 0x80 || b > 0xbf) return null;
      const left = (s.aux & 0xff) - 1;
      return left === 0 ? state(Mode.String, s.stack, s.aux >> 8) : state(Mode.Utf8, s.stack, left | (s.aux & 0x100));
    }
    case Mode.Escape:
      if (b === 0x75) return state(Mode.Hex, s.stack, 4 | (s.aux << 8));
      return '"\\/bfnrt'.includes(String.fromCharCode(b)) ? state(Mode.String, s.stack, s.aux) : null;
    case Mode.Hex: {
      if (!isHex(b)) return null;
      const left = (s.aux & 0xff) - 1;
      return left === 0 ? state(Mode.String, s.stack, s.aux >> 8) : state(Mode.Hex, s.stack, left | (s.aux & 0x100));
    }
    case Mode.Literal: {
      const want = LITERALS.charCodeAt(s.aux);
      if (b !== want) return null;
      return LITERALS.charCodeAt(s.aux + 1) === 0 ? afterValue(s.stack) : state(Mode.Literal, s.stack, s.aux + 1);
    }
    case Mode.Number:
      return number(s, b);
    case Mode.Done:
      return null;
  }
}

function number(s: JsonState, b: number): JsonState | null {
  const part = s.aux as NumberPart;
  const to = (p: NumberPart) => state(Mode.Number, s.stack, p);
  const digit = isDigit(b);
  switch (part) {
    case NumberPart.Minus:
      return b === 0x30 ? to(NumberPart.Zero) : digit ? to(NumberPart.Int) : null;
    case NumberPart.Dot:
      return digit ? to(NumberPart.Frac) : null;
    case NumberPart.E:
      return b === 0x2b || b === 0x2d ? to(NumberPart.ESign) : digit ? to(NumberPart.Exp) : null;
    case NumberPart.ESign:
      return digit ? to(NumberPart.Exp) : null;
  }
  // A complete number so far (0, digits, fraction or exponent digits): more of it, or its end.
  if (digit && part !== NumberPart.Zero) return s;
  if (b === 0x2e && (part === NumberPart.Zero || part === NumberPart.Int)) return to(NumberPart.Dot);
  if ((b === 0x65 || b === 0x45) && part !== NumberPart.Exp) return to(NumberPart.E);
  // The number ended at the byte before: that byte belongs to what follows the value.
  const after = afterValue(s.stack);
  return after.mode === Mode.Done ? null : step(after, b);
}

export const isComplete = (s: JsonState): boolean => s.mode === Mode.Done;

/**
 * The fewest bytes from this state to a complete text: the rest of the current token of JSON, the
 * shortest value where one is due ("0", or "":0 for a key and its value), then one byte per open
 * container. Budget-aware decoding (token-mask.ts) closes the object by it.
 */
export function distance(s: JsonState): number {
  const close = s.stack.length;
  const endString = (key: number) => (key ? 3 : 1) + close; // '"' (then ':0' after a key)
  switch (s.mode) {
    case Mode.Top: return 2;
    case Mode.Value: return 1 + close;
    case Mode.ObjectStart: case Mode.ArrayStart: case Mode.After: return close;
    case Mode.Key: return 4 + close;
    case Mode.Colon: return 2 + close;
    case Mode.String: return endString(s.aux);
    case Mode.Escape: return 1 + endString(s.aux);
    case Mode.Hex: case Mode.Utf8: return (s.aux & 0xff) + endString(s.aux >> 8);
    case Mode.Number: {
      const part = s.aux as NumberPart;
      const due = part === NumberPart.Minus || part === NumberPart.Dot || part === NumberPart.E || part === NumberPart.ESign;
      return (due ? 1 : 0) + close;
    }
    case Mode.Literal: return LITERALS.indexOf("\0", s.aux) - s.aux + close;
    case Mode.Done: return 0;
  }
}

/** A key for caching what depends only on the state. */
export const stateKey = (s: JsonState): string => `${s.mode}.${s.aux}.${s.ws}.${s.stack}`;
