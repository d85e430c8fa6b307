// The C structs of kernels/simd.h as JS writes them: the one place TypeScript knows their layout.
// Every field is 4 bytes (an i32, an f32 or a pointer into WASM memory), in the order listed here,
// which must be simd.h's; SimdDecoder compares the sizes with the kernels' struct_bytes() at load.
import type { Heap } from "./heap.js";

const qmatrix = (name: string) => [`${name}.w`, `${name}.scale`, `${name}.n_out`, `${name}.n_in`, `${name}.kind`];

export const QMATRIX_FIELDS = qmatrix("m").length;

export const LAYER_FIELDS = [
  "attn_norm", ...qmatrix("qkv"), "qkv_bias", "q_norm", "k_norm", ...qmatrix("o"), "ffn_norm", ...qmatrix("gate_up"), ...qmatrix("down"),
] as const;

export const MODEL_FIELDS = [
  "dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "ffn", "vocab", "max_rows", "page_size", "eps",
  ...qmatrix("embedding"), ...qmatrix("lm_head"), "final_norm", "rope_cos", "rope_sin", "layers",
  "x", "h", "qkv", "att", "gu", "scores", "xq", "xq_scale", "relaxed", "xq_sum", "sliding_window", "xq_boffset", "kv_int8",
] as const;

export const ROW_FIELDS = ["token", "position", "pages"] as const;

/** The f32 fields; every other field is an i32 or a pointer. */
const FLOATS = new Set(["eps"]);

/** Writes one struct at `at`: every listed field must be given (a missing one is a bug here, not input). */
export function writeStruct(heap: Heap, at: number, fields: readonly string[], values: Record<string, number>): void {
  const i32 = heap.i32(at, fields.length), f32 = heap.f32(at, fields.length);
  fields.forEach((name, i) => {
    const v = values[name];
    if (v === undefined) throw new Error(`struct field ${name} not set`);
    if (FLOATS.has(name)) f32[i] = v;
    else i32[i] = v;
  });
}

/** The sizes of Model, Layer and QMatrix the kernels were compiled with, checked against the lists above. */
export function checkLayout(structBytes: (which: number) => number): void {
  const expected = [MODEL_FIELDS.length * 4, LAYER_FIELDS.length * 4, QMATRIX_FIELDS * 4];
  const actual = [0, 1, 2].map(structBytes);
  if (actual.some((b, i) => b !== expected[i])) {
    throw new Error(`kernels.wasm's structs are [Model, Layer, QMatrix] = [${actual}] bytes, layout.ts writes [${expected}]: rebuild the kernels or update layout.ts`);
  }
}
