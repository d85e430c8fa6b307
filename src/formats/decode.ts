// Tensor values as f32, a row at a time (so a bf16 embedding of 150k rows is never a whole f32 copy):
// F32, F16 and BF16 little-endian; GGUF's Q8_0 (per 32 values: f16 scale d, 32 int8 q; x = d·q) and
// Q4_0 (f16 d, 16 bytes: value j is the low nibble of byte j, value j + 16 the high one; x = d·(q − 8)).
import { dtypeBytes, type TensorData } from "./weights.js";

const F16_EXP = new Float32Array(32).map((_, e) => 2 ** (e - 15));

/** IEEE half → number (F16 tensors, GGUF's block scales). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * F16_EXP[e];
}

const bf16 = new Float32Array(1), bf16Bits = new Uint32Array(bf16.buffer);
function bf16ToF32(b: number): number {
  bf16Bits[0] = b << 16;
  return bf16[0];
}

/** Decodes row `r` of a tensor of `cols` values per row into out[0..cols). */
export type RowDecoder = (r: number, out: Float32Array) => void;

/** Hugging Face row → the file's row (llama.cpp's interleaved q/k permutation, see TensorData). */
export function sourceRow(t: TensorData): (r: number) => number {
  const heads = t.interleavedHeads;
  if (!heads) return (r) => r;
  const hd = t.shape[0] / heads, half = hd / 2;
  return (r) => {
    const h = Math.floor(r / hd), i = r % hd;
    return h * hd + (i < half ? 2 * i : 2 * (i - half) + 1);
  };
}

export function rowDecoder(t: TensorData): { rows: number; cols: number; decode: RowDecoder } {
  const cols = t.shape[t.shape.length - 1], rows = t.shape.length === 1 ? 1 : t.shape[0];
  const rowBytes = dtypeBytes(t.dtype, cols);
  const view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const source = sourceRow(t);
  const decode: RowDecoder = (r, out) => {
    const at = source(r) * rowBytes;
    switch (t.dtype) {
      case "F32":
        for (let k = 0; k < cols; k++) out[k] = view.getFloat32(at + 4 * k, true);
        return;
      case "F16":
        for (let k = 0; k < cols; k++) out[k] = f16ToF32(view.getUint16(at + 2 * k, true));
        return;
      case "BF16":
        for (let k = 0; k < cols; k++) out[k] = bf16ToF32(view.getUint16(at + 2 * k, true));
        return;
      case "Q8_0":
        for (let b = 0; b < cols / 32; b++) {
          const o = at + b * 34, d = f16ToF32(view.getUint16(o, true));
          for (let j = 0; j < 32; j++) out[b * 32 + j] = d * view.getInt8(o + 2 + j);
        }
        return;
      case "Q4_0":
        for (let b = 0; b < cols / 32; b++) {
          const o = at + b * 18, d = f16ToF32(view.getUint16(o, true));
          for (let j = 0; j < 16; j++) {
            const q = view.getUint8(o + 2 + j);
            out[b * 32 + j] = d * ((q & 15) - 8);
            out[b * 32 + j + 16] = d * ((q >> 4) - 8);
          }
        }
        return;
    }
  };
  return { rows, cols, decode };
}

/** A whole (small) tensor as f32: norms, biases. */
export function decodeVector(t: TensorData): Float32Array {
  const { rows, cols, decode } = rowDecoder(t);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) decode(r, out.subarray(r * cols, (r + 1) * cols));
  return out;
}
