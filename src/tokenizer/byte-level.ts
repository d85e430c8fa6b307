// GPT-2 style byte-level alphabet: every byte maps to one printable code point so that
// tokenizer.json can store arbitrary byte strings as JSON text.

function buildByteToChar(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable.includes(b) ? b : next++);
  }
  return table;
}

const BYTE_TO_CHAR: readonly string[] = buildByteToChar();
const CHAR_TO_BYTE = new Map<string, number>(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** Byte-level vocabulary string (e.g. "Ġthe") → the bytes it stands for. */
export function tokenStringToBytes(token: string): Uint8Array {
  const chars = Array.from(token);
  const bytes = new Uint8Array(chars.length);
  chars.forEach((c, i) => {
    const b = CHAR_TO_BYTE.get(c);
    if (b === undefined) throw new Error(`not a byte-level token string: ${JSON.stringify(token)}`);
    bytes[i] = b;
  });
  return bytes;
}

