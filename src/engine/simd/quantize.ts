// Weight matrices in the layouts the kernels take (kernels/simd.h), made once at load: f32 matrices
// quantized to one of the kinds, our exporter's 7-bit int8 graph weights relaid out, and GGUF's
// Q8_0 / Q4_0 blocks repacked (their values unchanged).
import { f16ToF32 } from "../../formats/decode.js";

/**
 * q7: 7-bit, one scale per row (our exporter's graphs; the fastest on relaxed SIMD);
 * q8: 8-bit, one scale per row; q8_32: 8-bit, a scale per 32 values (GGUF Q8_0);
 * q4_32: 4-bit, a scale per 32 values (GGUF Q4_0).
 */
export type MatrixKind = "q7" | "q8" | "q8_32" | "q4_32";

/** The C enum in simd.h. */
export const KIND_CODE: Record<MatrixKind, number> = { q7: 0, q8: 1, q8_32: 2, q4_32: 3 };

/** A weight matrix in the kernels' layout: `rows` outputs of `cols` inputs. */
export interface QuantMatrix {
  kind: MatrixKind;
  rows: number;
  cols: number;
  /**
   * q7 / q8: row-major, q7 stored + 64, q8 as int8 bytes. q8_32: int8 bytes; q4_32: GGUF Q4_0's nibble
   * bytes (+ 8), cols / 2 a row; both with each block's 4 rows interleaved by 4 bytes (blockByteIndex).
   */
  data: Uint8Array;
  /** q7 / q8: one per row. Block kinds: one per 32 values, 4 rows interleaved: [((row / 4) · cols / 32 + block) · 4 + row % 4]. */
  scale: Float32Array;
}

const BLOCK = 32;
const isBlocked = (kind: MatrixKind) => kind === "q8_32" || kind === "q4_32";

function checkShape(rows: number, cols: number, kind: MatrixKind): void {
  if (!(rows > 0 && cols > 0 && Number.isInteger(rows) && Number.isInteger(cols))) throw new Error(`matrix shape ${rows} × ${cols}`);
  if (cols % 8) throw new Error(`${kind} matrix: ${cols} columns are not a multiple of 8`);
  if (isBlocked(kind) && (cols % BLOCK || rows % 4)) throw new Error(`${kind} matrix ${rows} × ${cols}: needs columns a multiple of 32 and rows a multiple of 4`);
}

const blockScaleIndex = (row: number, block: number, blocks: number) => ((row >> 2) * blocks + block) * 4 + (row & 3);

/**
 * Block kinds: where byte j of row `row`'s block `block` lies, for blocks of `bytes` bytes a row (32
 * for q8_32, 16 for q4_32: values j and j + 16). A group of 4 rows stores each block as 4 · bytes,
 * 4 bytes of each row in turn ([row 0 bytes 0..3, row 1 bytes 0..3, …, row 3's last 4]), so that a
 * vector's lanes are the 4 rows (relaxed.wat's gemm_q8b and gemm_q4b, simd.h).
 */
const blockByteIndex = (row: number, block: number, j: number, blocks: number, bytes: number) =>
  (((row >> 2) * blocks + block) * (bytes >> 2) + (j >> 2)) * 16 + (row & 3) * 4 + (j & 3);

/** An f32 matrix (row-major, `rows` outputs of `cols` inputs) quantized to `kind`, symmetric. */
export function quantizeMatrix(f32: Float32Array, rows: number, cols: number, kind: MatrixKind): QuantMatrix {
  if (f32.length !== rows * cols) throw new Error(`matrix of ${f32.length} values is not ${rows} × ${cols}`);
  return quantizeRows(rows, cols, kind, (r, out) => out.set(f32.subarray(r * cols, (r + 1) * cols)));
}

/**
 * A matrix given one f32 row at a time (`decodeRow(r, out)`) quantized to `kind`, so that a large
 * bf16 tensor (an embedding of 150k rows) is never a whole f32 copy.
 */
export function quantizeRows(rows: number, cols: number, kind: MatrixKind, decodeRow: (r: number, out: Float32Array) => void): QuantMatrix {
  checkShape(rows, cols, kind);
  const row = new Float32Array(cols);
  if (kind === "q7" || kind === "q8") {
    const qmax = kind === "q7" ? 63 : 127, offset = kind === "q7" ? 64 : 0;
    const data = new Uint8Array(rows * cols), scale = new Float32Array(rows);
    for (let o = 0; o < rows; o++) {
      decodeRow(o, row);
      let amax = 0;
      for (let k = 0; k < cols; k++) amax = Math.max(amax, Math.abs(row[k]));
      const s = amax > 0 ? amax / qmax : 1;
      scale[o] = s;
      for (let k = 0, at = o * cols; k < cols; k++) data[at + k] = (Math.round(row[k] / s) + offset) & 0xff;
    }
    return { kind, rows, cols, data, scale };
  }
  const blocks = cols / BLOCK, q4 = kind === "q4_32";
  const data = new Uint8Array(q4 ? (rows * cols) / 2 : rows * cols), scale = new Float32Array(rows * blocks);
  for (let o = 0; o < rows; o++) {
    decodeRow(o, row);
    for (let b = 0; b < blocks; b++) {
      const at = b * BLOCK;
      // As llama.cpp's quantize_row_q8_0 / q4_0: Q8_0 maps |x|max to 127; Q4_0 maps the value of
      // largest magnitude, with its sign, to −8, so the whole [−8, 7] range is used.
      let amax = 0, signedMax = 0;
      for (let j = 0; j < BLOCK; j++) {
        const v = row[at + j];
        if (Math.abs(v) > amax) (amax = Math.abs(v)), (signedMax = v);
      }
      const d = q4 ? signedMax / -8 : amax / 127, inv = d ? 1 / d : 0;
      scale[blockScaleIndex(o, b, blocks)] = d;
      if (q4) {
        for (let j = 0; j < 16; j++) {
          const lo = Math.min(15, Math.trunc(row[at + j] * inv + 8.5)), hi = Math.min(15, Math.trunc(row[at + j + 16] * inv + 8.5));
          data[blockByteIndex(o, b, j, blocks, 16)] = lo | (hi << 4);
        }
      } else {
        for (let j = 0; j < BLOCK; j++) data[blockByteIndex(o, b, j, blocks, 32)] = Math.round(row[at + j] * inv) & 0xff;
      }
    }
  }
  return { kind, rows, cols, data, scale };
}

/** W[row][col] for every value: the matrix the kernels multiply by (for references and tests). */
export function dequantizeMatrix(m: QuantMatrix): Float32Array {
  const { rows, cols, data, scale } = m, out = new Float32Array(rows * cols), blocks = cols / BLOCK;
  for (let o = 0; o < rows; o++) {
    for (let k = 0; k < cols; k++) {
      const i = o * cols + k;
      if (m.kind === "q7") out[i] = (data[i] - 64) * scale[o];
      else if (m.kind === "q8") out[i] = ((data[i] << 24) >> 24) * scale[o];
      else {
        const s = scale[blockScaleIndex(o, Math.floor(k / BLOCK), blocks)];
        if (m.kind === "q8_32") out[i] = ((data[blockByteIndex(o, Math.floor(k / BLOCK), k % BLOCK, blocks, 32)] << 24) >> 24) * s;
        else {
          const byte = data[blockByteIndex(o, Math.floor(k / BLOCK), k % 16, blocks, 16)];
          out[i] = ((k % BLOCK < 16 ? byte & 15 : byte >> 4) - 8) * s;
        }
      }
    }
  }
  return out;
}

/**
 * An ONNX graph's int8 weights ([in, out], one scale per output) → one row per output: q7 when every
 * value is within ±63 (our exporter's 7-bit weights), else q8 (−128 clamped to −127, see
 * repackGgufBlocks). The transpose runs in 32 × 32 tiles so that both sides stay in cache.
 */
export function fromColumnMajorInt8(columnMajor: Int8Array, scale: Float32Array, rows: number, cols: number): QuantMatrix {
  checkShape(rows, cols, "q8");
  const data = new Uint8Array(rows * cols), T = 32;
  let sevenBit = true;
  for (let k0 = 0; k0 < cols; k0 += T) {
    for (let o0 = 0; o0 < rows; o0 += T) {
      const kEnd = Math.min(k0 + T, cols), oEnd = Math.min(o0 + T, rows);
      for (let k = k0; k < kEnd; k++) {
        for (let o = o0, src = k * rows + o0; o < oEnd; o++, src++) {
          const v = columnMajor[src];
          if (v < -64 || v > 63) sevenBit = false;
          data[o * cols + k] = v & 0xff;
        }
      }
    }
  }
  if (sevenBit) for (let i = 0; i < data.length; i++) data[i] = (data[i] + 64) & 0xff; // −64..63 stored + 64 (q7)
  else for (let i = 0; i < data.length; i++) if (data[i] === 0x80) data[i] = 0x81;
  return { kind: sevenBit ? "q7" : "q8", rows, cols, data, scale: Float32Array.from(scale) };
}

/**
 * A GGUF tensor's raw Q8_0 or Q4_0 blocks (ne0 = `cols` values per row, `rows` rows; a block is an
 * f16 scale then 32 int8 values, or 16 bytes of nibbles) → q8_32 / q4_32, row o taken from the file's
 * row sourceRow(o) (llama.cpp's q/k permutation undone). The values are kept
 * exactly; only the scales move (f16 → f32, 4 rows interleaved) and the weights are interleaved by
 * 4 rows (blockByteIndex).
 */
export function repackGgufBlocks(raw: Uint8Array, rows: number, cols: number, type: "Q8_0" | "Q4_0", sourceRow: (row: number) => number = (r) => r): QuantMatrix {
  const kind: MatrixKind = type === "Q8_0" ? "q8_32" : "q4_32", q4 = type === "Q4_0";
  checkShape(rows, cols, kind);
  const blocks = cols / BLOCK, blockBytes = q4 ? 18 : 34, payload = blockBytes - 2;
  if (raw.byteLength !== rows * blocks * blockBytes) {
    throw new Error(`${type} tensor ${rows} × ${cols}: expected ${rows * blocks * blockBytes} bytes, found ${raw.byteLength}`);
  }
  const data = new Uint8Array(rows * blocks * payload), scale = new Float32Array(rows * blocks);
  for (let o = 0; o < rows; o++) {
    for (let b = 0; b < blocks; b++) {
      const at = (sourceRow(o) * blocks + b) * blockBytes;
      scale[blockScaleIndex(o, b, blocks)] = f16ToF32(raw[at] | (raw[at + 1] << 8));
      for (let j = 0; j < payload; j += 4) data.set(raw.subarray(at + 2 + j, at + 6 + j), blockByteIndex(o, b, j, blocks, payload));
    }
  }
  // The kernels negate 8-bit weights (relaxed.wat's gemm_q8b), so −128 becomes −127; llama.cpp's own
  // Q8_0 quantizer writes ±127 only.
  if (!q4) for (let i = 0; i < data.length; i++) if (data[i] === 0x80) data[i] = 0x81;
  return { kind, rows, cols, data, scale };
}
