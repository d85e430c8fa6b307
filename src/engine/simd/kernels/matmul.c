// Matrix products of quantized activations with quantized weights: y[r][o] = Σ_k x[r][k] · W[o][k],
// for each weight kind of simd.h (7-bit and 8-bit with a scale per row; 8-bit and 4-bit with a scale
// per 32-value block).
// Plain SIMD128: each activation row is quantized to int16 with one scale (int16 costs the same
// i32x4.dot_i16x8_s as int8 and is ~256× finer); weights are widened to int16 (v128.load8x8_{u,s}, or
// the two nibbles of a 4-bit byte split and extended); tiles of 4 weight rows × 2 activation rows, so
// each loaded weight vector serves both activation rows and each activation vector four weight rows.
// Relaxed SIMD (relaxed.wat, imported): activations as int8, 16 multiply-adds per instruction.
// Block kinds sum each 32-value block in i32, then scale 4 rows' block sums as one f32 vector.
// i32 arithmetic wraps, so the integer results are exact while the true sums fit in i32: Q7_ROW's
// offset of 64 is taken out with each activation row's sum, exact while |Σ x·(w' − 64)| < 2^31, which
// holds for any input when n_in ≤ 1,024 (int16 activations: 32767 · 64 · 1024 = 2^31); wider rows
// rely on the sum staying below it (the same holds for Q8_ROW's Σ x·w).
#include "simd.h"

// relaxed.wasm's kernels (see relaxed.wat for the layouts); only called when m->relaxed.
#define RELAXED(name) __attribute__((import_module("env"), import_name(name)))
RELAXED("relaxed_gemm") void relaxed_gemm(float *y, int ldy, const int8_t *a, const float *as, const int32_t *asum, int rows,
                                          const uint8_t *w, const float *ws, int n_out, int n_in);
RELAXED("relaxed_gemm_s8") void relaxed_gemm_s8(float *y, int ldy, const int8_t *a_abs, const int8_t *a_sign, const float *as, int rows,
                                                const uint8_t *w, const float *ws, int n_out, int n_in);
RELAXED("relaxed_gemm_q8b") void relaxed_gemm_q8b(float *y, int ldy, const int8_t *a_abs, const int8_t *a_sign, const float *as, int rows,
                                                  const uint8_t *w, const float *ws, int n_out, int n_in);
RELAXED("relaxed_gemm_q4b") void relaxed_gemm_q4b(float *y, int ldy, const int8_t *a, const float *as, const int32_t *boffsets, int rows,
                                                  const uint8_t *w, const float *ws, int n_out, int n_in);

#define INLINE static inline __attribute__((always_inline))

INLINE int32_t hsum(v128_t v) {
  v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_i32x4_extract_lane(v, 0);
}

// Largest |q| such that no i32 lane can overflow: a lane adds n_in / 4 products of |q| · 128.
static int32_t activation_limit(int n_in) {
  int64_t limit = 2147483647LL / ((int64_t)(n_in / 4 + 1) * 128);
  return limit < 32767 ? (int32_t)limit : 32767;
}

INLINE v128_t quantize4(const float *x, v128_t inv) {
  return wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x), inv)));
}

// Rows to int16 (q[r][k] = round(x / scale)), with each row's scale and sum, and (boffsets ≠ 0) 8 ×
// the sum of each 32-value block: what Q4_B32's nibbles, stored + 8, add to the block's dot product.
static void quantize_rows(int16_t *q, float *scales, int32_t *sums, int32_t *boffsets, const float *x, int rows, int n, int32_t qmax) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    const float amax = absmax(xr, n), scale = amax > 0 ? amax / (float)qmax : 1.0f;
    const v128_t inv = wasm_f32x4_splat(1.0f / scale);
    int16_t *qr = q + r * n;
    v128_t sum = wasm_i32x4_splat(0), block = sum;
    for (int k = 0; k < n; k += 8) {
      v128_t a = quantize4(xr + k, inv), b = quantize4(xr + k + 4, inv);
      block = wasm_i32x4_add(block, wasm_i32x4_add(a, b));
      wasm_v128_store(qr + k, wasm_i16x8_narrow_i32x4(a, b));
      if (k % 32 == 24) {
        sum = wasm_i32x4_add(sum, block);
        if (boffsets) boffsets[r * (n / 32) + k / 32] = 8 * hsum(block);
        block = wasm_i32x4_splat(0);
      }
    }
    scales[r] = scale;
    sums[r] = hsum(wasm_i32x4_add(sum, block));
  }
}

// Rows to int8 (±127) for the relaxed kernels, with each row's scale and sum, (boffsets ≠ 0) 8 × each
// 32-value block's sum (as quantize_rows), and (signs ≠ 0) as |q| in q and q's sign mask (0 or −1) in
// signs, so that an 8-bit weight can take the sign and |q| be the dot product's unsigned 7-bit operand.
static void quantize_rows_i8(int8_t *q, int8_t *signs, float *scales, int32_t *sums, int32_t *boffsets, const float *x, int rows, int n) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    const float amax = absmax(xr, n), scale = amax > 0 ? amax / 127.0f : 1.0f;
    const v128_t inv = wasm_f32x4_splat(1.0f / scale);
    int8_t *qr = q + r * n;
    v128_t sum = wasm_i32x4_splat(0), block = sum;
    for (int k = 0; k < n; k += 16) {
      v128_t a = quantize4(xr + k, inv), b = quantize4(xr + k + 4, inv);
      v128_t c = quantize4(xr + k + 8, inv), d = quantize4(xr + k + 12, inv);
      block = wasm_i32x4_add(block, wasm_i32x4_add(wasm_i32x4_add(a, b), wasm_i32x4_add(c, d)));
      v128_t v = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(a, b), wasm_i16x8_narrow_i32x4(c, d));
      if (signs) {
        wasm_v128_store(signs + r * n + k, wasm_i8x16_shr(v, 7));
        v = wasm_i8x16_abs(v);
      }
      wasm_v128_store(qr + k, v);
      if (k % 32 == 16) {
        sum = wasm_i32x4_add(sum, block);
        if (boffsets) boffsets[r * (n / 32) + k / 32] = 8 * hsum(block);
        block = wasm_i32x4_splat(0);
      }
    }
    scales[r] = scale;
    sums[r] = hsum(wasm_i32x4_add(sum, block));
  }
}

// Σ x·(w' − 64) from Σ x·w' and Σ x (i32 wraps; exact while the true value fits in i32, see above).
INLINE float unoffset(int32_t acc, int32_t sum) {
  return (float)(int32_t)((uint32_t)acc - 64u * (uint32_t)sum);
}

// Per-row kinds (Q7_ROW: unsigned + 64, Q8_ROW: signed): 8 weights widened to int16.
INLINE v128_t load_row8(const uint8_t *w, int q8) {
  return q8 ? wasm_i16x8_load8x8(w) : wasm_u16x8_load8x8(w);
}

INLINE float finish(int32_t acc, int32_t sum, int q8) {
  return q8 ? (float)acc : unoffset(acc, sum);
}

// 4 weight rows × 2 activation rows, per-row kinds.
INLINE void tile_4x2(float *y, int ldy, const int16_t *a, int n, const uint8_t *w, const float *ws, const float *as, const int32_t *sums, int q8) {
  v128_t c00 = wasm_i32x4_splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const uint8_t *w0 = w, *w1 = w + n, *w2 = w + 2 * n, *w3 = w + 3 * n;
  const int16_t *a0 = a, *a1 = a + n;
  for (int k = 0; k < n; k += 8) {
    v128_t x0 = wasm_v128_load(a0 + k), x1 = wasm_v128_load(a1 + k);
    v128_t v = load_row8(w0 + k, q8);
    c00 = wasm_i32x4_add(c00, wasm_i32x4_dot_i16x8(v, x0));
    c01 = wasm_i32x4_add(c01, wasm_i32x4_dot_i16x8(v, x1));
    v = load_row8(w1 + k, q8);
    c10 = wasm_i32x4_add(c10, wasm_i32x4_dot_i16x8(v, x0));
    c11 = wasm_i32x4_add(c11, wasm_i32x4_dot_i16x8(v, x1));
    v = load_row8(w2 + k, q8);
    c20 = wasm_i32x4_add(c20, wasm_i32x4_dot_i16x8(v, x0));
    c21 = wasm_i32x4_add(c21, wasm_i32x4_dot_i16x8(v, x1));
    v = load_row8(w3 + k, q8);
    c30 = wasm_i32x4_add(c30, wasm_i32x4_dot_i16x8(v, x0));
    c31 = wasm_i32x4_add(c31, wasm_i32x4_dot_i16x8(v, x1));
  }
  y[0] = finish(hsum(c00), sums[0], q8) * ws[0] * as[0];
  y[1] = finish(hsum(c10), sums[0], q8) * ws[1] * as[0];
  y[2] = finish(hsum(c20), sums[0], q8) * ws[2] * as[0];
  y[3] = finish(hsum(c30), sums[0], q8) * ws[3] * as[0];
  y[ldy + 0] = finish(hsum(c01), sums[1], q8) * ws[0] * as[1];
  y[ldy + 1] = finish(hsum(c11), sums[1], q8) * ws[1] * as[1];
  y[ldy + 2] = finish(hsum(c21), sums[1], q8) * ws[2] * as[1];
  y[ldy + 3] = finish(hsum(c31), sums[1], q8) * ws[3] * as[1];
}

// One weight row × one activation row, per-row kinds. A single activation row (decode of one
// sequence, and an odd last row) takes its weight rows one after another, in memory order: 4 rows
// side by side streamed 1.3–1.9× slower from memory (relaxed.wat's gemm; BENCHMARKS.md).
INLINE float dot_1x1(const int16_t *a, int n, const uint8_t *w, int32_t sum, int q8) {
  v128_t c = wasm_i32x4_splat(0);
  for (int k = 0; k < n; k += 8) c = wasm_i32x4_add(c, wasm_i32x4_dot_i16x8(load_row8(w + k, q8), wasm_v128_load(a + k)));
  return finish(hsum(c), sum, q8);
}

// Blocks of OUT_BLOCK weight rows stay in cache while every activation row passes over them.
#define OUT_BLOCK 64

// Output rows [begin, end) of y (row stride n_out).
INLINE void linear_rows(float *y, const int16_t *q, const float *qs, const int32_t *sums, int rows, const QMatrix *mat, int q8, int begin, int end) {
  const int n = mat->n_in, n_out = mat->n_out;
  for (int o0 = begin; o0 < end; o0 += OUT_BLOCK) {
    int o1 = o0 + OUT_BLOCK < end ? o0 + OUT_BLOCK : end;
    int r = 0;
    for (; r + 2 <= rows; r += 2) {
      int o = o0;
      for (; o + 4 <= o1; o += 4) tile_4x2(y + r * n_out + o, n_out, q + r * n, n, mat->w + o * n, mat->scale + o, qs + r, sums + r, q8);
      for (; o < o1; o++) {
        y[r * n_out + o] = dot_1x1(q + r * n, n, mat->w + o * n, sums[r], q8) * mat->scale[o] * qs[r];
        y[(r + 1) * n_out + o] = dot_1x1(q + (r + 1) * n, n, mat->w + o * n, sums[r + 1], q8) * mat->scale[o] * qs[r + 1];
      }
    }
    for (; r < rows; r++) {
      for (int o = o0; o < o1; o++) y[r * n_out + o] = dot_1x1(q + r * n, n, mat->w + o * n, sums[r], q8) * mat->scale[o] * qs[r];
    }
  }
}

// Q8_B32, a group of 4 weight rows × R activation rows (R = 1 or 2: constant after inlining, so the
// arrays below are registers). A block's 128 bytes interleave the 4 rows by 4 bytes (simd.h): the 16
// bytes at 16m hold values 4m..4m+3 of each row. Widened to int16, the first 8 are rows 0–1 and the
// last 8 rows 2–3; against the 4 activations repeated (load64_splat) each dot product's lanes are
// [row 0, row 0, row 1, row 1] (or rows 2, 3), added pairwise once per block.
INLINE void tile_q8_blocks(float *y, int ldy, const int16_t *a, int n, const uint8_t *w, const float *ws, const float *as, int R) {
  const int nb = n / 32;
  v128_t acc[2] = {wasm_f32x4_splat(0), wasm_f32x4_splat(0)};
  for (int b = 0; b < nb; b++) {
    v128_t c01[2], c23[2];
    for (int r = 0; r < R; r++) c01[r] = c23[r] = wasm_i32x4_splat(0);
    for (int m = 0; m < 8; m++) {
      const v128_t w01 = wasm_i16x8_load8x8(w + 128 * b + 16 * m), w23 = wasm_i16x8_load8x8(w + 128 * b + 16 * m + 8);
      for (int r = 0; r < R; r++) {
        const v128_t x = wasm_v128_load64_splat(a + r * n + 32 * b + 4 * m);
        c01[r] = wasm_i32x4_add(c01[r], wasm_i32x4_dot_i16x8(w01, x));
        c23[r] = wasm_i32x4_add(c23[r], wasm_i32x4_dot_i16x8(w23, x));
      }
    }
    const v128_t scale = wasm_v128_load(ws + 4 * b);
    for (int r = 0; r < R; r++) {
      const v128_t s = wasm_i32x4_add(wasm_i32x4_shuffle(c01[r], c23[r], 0, 2, 4, 6), wasm_i32x4_shuffle(c01[r], c23[r], 1, 3, 5, 7));
      acc[r] = wasm_f32x4_add(acc[r], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s), scale));
    }
  }
  for (int r = 0; r < R; r++) wasm_v128_store(y + r * ldy, wasm_f32x4_mul(acc[r], wasm_f32x4_splat(as[r])));
}

// Q4_B32, a group of 4 weight rows × R activation rows (R = 1 or 2). A block's 64 bytes interleave
// the 4 rows by 4 bytes (simd.h), so a vector of 16 bytes holds bytes 4m..4m+3 of each row: its low
// nibbles values 4m..4m+3, its high nibbles 16+4m..19+4m. Widened to int16, one half is rows 0–1
// and the other rows 2–3; against the 4 activations repeated (load64_splat) each dot product's lanes
// are [row 0, row 0, row 1, row 1] (or rows 2, 3), added pairwise once per block.
INLINE void tile_q4(float *y, int ldy, const int16_t *a, int n, const uint8_t *w, const float *ws, const float *as,
                    const int32_t *boffsets, int R) {
  const int nb = n / 32;
  // The nibble mask from a parameter (n ≥ 0, so n >> 31 is 0): V8 keeps a value in a register but
  // rematerializes a constant at every use (3 instructions), and lowers an 8-bit shift to a 16-bit
  // one plus a mask it builds each time; the high nibbles are a 16-bit shift and this mask instead.
  const v128_t m15 = wasm_i8x16_splat(0x0F | (n >> 31));
  v128_t acc[2] = {wasm_f32x4_splat(0), wasm_f32x4_splat(0)};
  for (int b = 0; b < nb; b++) {
    v128_t c01[2], c23[2];
    for (int r = 0; r < R; r++) c01[r] = c23[r] = wasm_i32x4_splat(0);
    for (int m = 0; m < 4; m++) {
      const v128_t bytes = wasm_v128_load(w + 64 * b + 16 * m);
      const v128_t lo = wasm_v128_and(bytes, m15), hi = wasm_v128_and(wasm_u16x8_shr(bytes, 4), m15);
      const v128_t lo01 = wasm_u16x8_extend_low_u8x16(lo), lo23 = wasm_u16x8_extend_high_u8x16(lo);
      const v128_t hi01 = wasm_u16x8_extend_low_u8x16(hi), hi23 = wasm_u16x8_extend_high_u8x16(hi);
      for (int r = 0; r < R; r++) {
        const int16_t *ab = a + r * n + 32 * b + 4 * m;
        const v128_t xl = wasm_v128_load64_splat(ab), xh = wasm_v128_load64_splat(ab + 16);
        c01[r] = wasm_i32x4_add(c01[r], wasm_i32x4_add(wasm_i32x4_dot_i16x8(lo01, xl), wasm_i32x4_dot_i16x8(hi01, xh)));
        c23[r] = wasm_i32x4_add(c23[r], wasm_i32x4_add(wasm_i32x4_dot_i16x8(lo23, xl), wasm_i32x4_dot_i16x8(hi23, xh)));
      }
    }
    const v128_t scale = wasm_v128_load(ws + 4 * b);
    for (int r = 0; r < R; r++) {
      v128_t s = wasm_i32x4_add(wasm_i32x4_shuffle(c01[r], c23[r], 0, 2, 4, 6), wasm_i32x4_shuffle(c01[r], c23[r], 1, 3, 5, 7));
      s = wasm_i32x4_sub(s, wasm_i32x4_splat(boffsets[r * nb + b]));  // nibbles are stored + 8
      acc[r] = wasm_f32x4_add(acc[r], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(s), scale));
    }
  }
  for (int r = 0; r < R; r++) wasm_v128_store(y + r * ldy, wasm_f32x4_mul(acc[r], wasm_f32x4_splat(as[r])));
}

INLINE void tile_blocks(float *y, int ldy, const int16_t *a, int n, const uint8_t *w, const float *ws, const float *as,
                        const int32_t *boffsets, int R, int q4) {
  if (q4) tile_q4(y, ldy, a, n, w, ws, as, boffsets, R);
  else tile_q8_blocks(y, ldy, a, n, w, ws, as, R);
}

// Output rows [begin, end) of y (row stride n_out); begin and end are multiples of 4 (whole groups).
INLINE void linear_blocks(float *y, const int16_t *q, const float *qs, const int32_t *boffsets, int rows, const QMatrix *mat, int q4, int begin, int end) {
  const int n = mat->n_in, n_out = mat->n_out, nb = n / 32, row_bytes = q4 ? n / 2 : n;
  for (int o0 = begin; o0 < end; o0 += OUT_BLOCK) {
    int o1 = o0 + OUT_BLOCK < end ? o0 + OUT_BLOCK : end;
    int r = 0;
    for (; r + 2 <= rows; r += 2) {
      for (int o = o0; o < o1; o += 4) tile_blocks(y + r * n_out + o, n_out, q + r * n, n, mat->w + o * row_bytes, mat->scale + o * nb, qs + r, boffsets + r * nb, 2, q4);
    }
    for (; r < rows; r++) {
      for (int o = o0; o < o1; o += 4) tile_blocks(y + r * n_out + o, n_out, q + r * n, n, mat->w + o * row_bytes, mat->scale + o * nb, qs + r, boffsets + r * nb, 1, q4);
    }
  }
}

// Whether linear() runs this product on relaxed.wasm (int8 activations) or on the plain kernels (int16).
static int on_relaxed(const Model *m, const QMatrix *mat) {
  return m->relaxed && mat->n_in % 16 == 0 && mat->n_out % 4 == 0;
}

// y[rows][w->n_out] = x[rows][w->n_in] · Wᵀ: the activations quantized once, then the product, whose
// output rows two threads may share (threads.c).
void linear(const Model *m, float *y, const float *x, int rows, const QMatrix *mat) {
  const int n = mat->n_in, kind = mat->kind;
  float *qs = m->xq_scale;
  int32_t *sums = m->xq_sum, *boffsets = m->xq_boffset;
  if (on_relaxed(m, mat)) {
    int8_t *q = (int8_t *)m->xq, *signs = q + rows * n;  // xq holds 2 bytes per value: |q| then the signs
    if (kind == Q7_ROW) quantize_rows_i8(q, 0, qs, sums, 0, x, rows, n);
    else if (kind == Q8_ROW || kind == Q8_B32) quantize_rows_i8(q, signs, qs, sums, 0, x, rows, n);
    else quantize_rows_i8(q, 0, qs, sums, boffsets, x, rows, n);
  } else {
    const int blocks = kind == Q8_B32 || kind == Q4_B32;
    // A block's i32 sums hold 32 products, so the block kinds take the full int16 range.
    quantize_rows(m->xq, qs, sums, kind == Q4_B32 ? boffsets : 0, x, rows, n, blocks ? 32767 : activation_limit(n));
  }
  shared_product(m, y, rows, mat);
}

// Output rows [begin, end) of linear()'s product (multiples of 4, or end = n_out), from the
// activations it quantized into m's scratch: y[r][o] for o in [begin, end), row stride n_out.
void product(const Model *m, float *y, int rows, const QMatrix *mat, int begin, int end) {
  const int n = mat->n_in, n_out = mat->n_out, nb = n / 32, kind = mat->kind, count = end - begin;
  const float *qs = m->xq_scale;
  const int32_t *sums = m->xq_sum, *boffsets = m->xq_boffset;
  if (on_relaxed(m, mat)) {
    const int8_t *q = (const int8_t *)m->xq, *signs = q + rows * n;
    float *yb = y + begin;
    if (kind == Q7_ROW) relaxed_gemm(yb, n_out, q, qs, sums, rows, mat->w + begin * n, mat->scale + begin, count, n);
    else if (kind == Q8_ROW) relaxed_gemm_s8(yb, n_out, q, signs, qs, rows, mat->w + begin * n, mat->scale + begin, count, n);
    else if (kind == Q8_B32) relaxed_gemm_q8b(yb, n_out, q, signs, qs, rows, mat->w + begin * n, mat->scale + begin * nb, count, n);
    else relaxed_gemm_q4b(yb, n_out, q, qs, boffsets, rows, mat->w + begin * n / 2, mat->scale + begin * nb, count, n);
    return;
  }
  const int16_t *q = m->xq;
  if (kind == Q7_ROW) linear_rows(y, q, qs, sums, rows, mat, 0, begin, end);
  else if (kind == Q8_ROW) linear_rows(y, q, qs, sums, rows, mat, 1, begin, end);
  else linear_blocks(y, q, qs, boffsets, rows, mat, kind == Q4_B32, begin, end);
}

// linear() for JS outside a model (parity tests, the bench's kernel rows); m needs only its scratch
// fields and `relaxed`.
EXPORT void matmul(const Model *m, float *y, const float *x, int rows, const QMatrix *mat) {
  linear(m, y, x, rows, mat);
}

// Block kinds: the byte j of row `row`'s block b, for blocks of B bytes a row (simd.h's interleaving
// of 4 rows by 4 bytes; quantize.ts's blockByteIndex).
static int block_byte(int row, int b, int j, int nb, int B) {
  return (((row / 4) * nb + b) * (B / 4) + j / 4) * 16 + (row % 4) * 4 + j % 4;
}

// y[k] = W[row][k] for k < n_in: one row dequantized (the token embedding lookup).
void dequantize_row(float *y, const QMatrix *mat, int row) {
  const int n = mat->n_in, nb = n / 32;
  const float *group = mat->scale + (row / 4) * nb * 4;  // the block kinds' 4-row interleaved scales
  for (int k = 0; k < n; k++) {
    switch (mat->kind) {
      case Q7_ROW: y[k] = ((int)mat->w[row * n + k] - 64) * mat->scale[row]; break;
      case Q8_ROW: y[k] = (int8_t)mat->w[row * n + k] * mat->scale[row]; break;
      case Q8_B32: y[k] = (int8_t)mat->w[block_byte(row, k / 32, k % 32, nb, 32)] * group[(k / 32) * 4 + row % 4]; break;
      default: {
        const uint8_t byte = mat->w[block_byte(row, k / 32, k % 16, nb, 16)];  // values j and j + 16
        y[k] = ((k % 32 < 16 ? byte & 15 : byte >> 4) - 8) * group[(k / 32) * 4 + row % 4];
      }
    }
  }
}
