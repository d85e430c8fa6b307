// A GGUF v3 writer for the bench's models (src/formats/gguf.ts reads the format; its header comment
// has the layout). Tensors are streamed to the file a block of rows at a time, so a 0.5B-parameter
// model at F16 (1 GB) never sits in memory whole. Types written: F32 and F16; llama-quantize makes
// the Q8_0 / Q4_0 files from them.
import { closeSync, openSync, writeSync } from "node:fs";

/** One metadata value as GGUF encodes it: its u32 type, then the payload. */
export type GgufMetaValue = Uint8Array;

const TYPE = { u32: 4, f32: 6, str: 8 } as const;

function typed(type: number, payload: Uint8Array): GgufMetaValue {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, type, true);
  out.set(payload, 4);
  return out;
}

function ggufString(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s), out = new Uint8Array(8 + bytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(bytes.length), true);
  out.set(bytes, 8);
  return out;
}

export const u32 = (v: number): GgufMetaValue => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return typed(TYPE.u32, b);
};
export const f32 = (v: number): GgufMetaValue => typed(TYPE.f32, new Uint8Array(Float32Array.of(v).buffer));
export const str = (v: string): GgufMetaValue => typed(TYPE.str, ggufString(v));

export interface GgufTensorSource {
  name: string;
  dtype: "F32" | "F16";
  /** Hugging Face order, outermost first ([rows, cols]); GGUF stores the dims innermost first. */
  shape: number[];
  /** Writes rows [start, start + out.length / cols) of the tensor, row-major, into out. */
  rows: (start: number, out: Float32Array) => void;
}

const GGML_TYPE = { F32: 0, F16: 1 } as const;
const ALIGNMENT = 32;

/** f32 → IEEE half, round to nearest even (the same result as Float16Array, which Node 20 lacks). */
function toHalf(x: number, f32View: Float32Array, u32View: Uint32Array): number {
  f32View[0] = x;
  const bits = u32View[0], sign = (bits >>> 16) & 0x8000, exp = (bits >>> 23) & 0xff, mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000, shift = 14 - e, half = m >>> shift, rest = m & ((1 << shift) - 1), mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13), rest = mant & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/** Writes `path`: header, metadata, tensor infos, then each tensor's data at 32-byte alignment. */
export function writeGguf(path: string, metadata: Record<string, GgufMetaValue>, tensors: GgufTensorSource[]): void {
  const entries = Object.entries({ ...metadata, "general.alignment": u32(ALIGNMENT) });
  const head = new DataView(new ArrayBuffer(24));
  new Uint8Array(head.buffer).set(new TextEncoder().encode("GGUF"));
  head.setUint32(4, 3, true);
  head.setBigUint64(8, BigInt(tensors.length), true);
  head.setBigUint64(16, BigInt(entries.length), true);
  const parts: Uint8Array[] = [new Uint8Array(head.buffer)];
  for (const [key, value] of entries) parts.push(ggufString(key), value);
  let offset = 0;
  const sizes = tensors.map((t) => t.shape.reduce((a, b) => a * b, 1) * (t.dtype === "F32" ? 4 : 2));
  tensors.forEach((t, i) => {
    const info = new DataView(new ArrayBuffer(4 + 8 * t.shape.length + 4 + 8));
    info.setUint32(0, t.shape.length, true);
    [...t.shape].reverse().forEach((d, j) => info.setBigUint64(4 + 8 * j, BigInt(d), true));
    info.setUint32(4 + 8 * t.shape.length, GGML_TYPE[t.dtype], true);
    info.setBigUint64(8 + 8 * t.shape.length, BigInt(offset), true);
    parts.push(ggufString(t.name), new Uint8Array(info.buffer));
    offset += sizes[i] + (-sizes[i] & (ALIGNMENT - 1));
  });
  const fd = openSync(path, "w");
  try {
    let at = 0;
    const write = (b: Uint8Array) => {
      writeSync(fd, b);
      at += b.length;
    };
    for (const p of parts) write(p);
    write(new Uint8Array(-at & (ALIGNMENT - 1)));
    const f32View = new Float32Array(1), u32View = new Uint32Array(f32View.buffer);
    tensors.forEach((t, i) => {
      const cols = t.shape.at(-1)!, rows = sizes[i] / (t.dtype === "F32" ? 4 : 2) / cols;
      const block = Math.max(1, Math.floor(2 ** 20 / cols)); // ~1M values per write
      const values = new Float32Array(block * cols), halves = new Uint16Array(block * cols);
      for (let r = 0; r < rows; r += block) {
        const n = Math.min(block, rows - r), chunk = values.subarray(0, n * cols);
        t.rows(r, chunk);
        if (t.dtype === "F32") write(new Uint8Array(chunk.buffer, 0, chunk.byteLength));
        else {
          for (let k = 0; k < chunk.length; k++) halves[k] = toHalf(chunk[k], f32View, u32View);
          write(new Uint8Array(halves.buffer, 0, 2 * chunk.length));
        }
      }
      write(new Uint8Array(-sizes[i] & (ALIGNMENT - 1)));
    });
  } finally {
    closeSync(fd);
  }
}
