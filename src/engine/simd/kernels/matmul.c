// Matrix products of quantized activations with 7-bit weights: y[r][o] = Σ_k x[r][k] · W[o][k].
// Plain SIMD128: each activation row is quantized to int16 with one scale (int16 costs the same
// i32x4.dot_i16x8_s as int8 and is ~256× finer); weight rows are widened with v128.load8x8_u; tiles
// of 4 weight rows × 2 activation rows, so each loaded weight vector serves both activation rows and
// each activation vector four weight rows (14 of the 16 SIMD registers). Relaxed SIMD (relaxed.wat,
// imported): activations as int8, 16 multiply-adds per instruction. Weights carry an offset of 64
// (simd.h), taken out with each activation row's sum; i32 arithmetic wraps, so the integer result is
// exact while |Σ x·(w' − 64)| < 2^31, which holds for any input when n_in ≤ 1,024 (int16 activations:
// 32767 · 64 · 1024 = 2^31); wider rows rely on the sum staying below it.
#include "simd.h"

// relaxed.wasm's gemm (see relaxed.wat for the layout); only called when m->relaxed.
__attribute__((import_module("env"), import_name("relaxed_gemm")))
void relaxed_gemm(float *y, int ldy, const int8_t *a, const float *as, const int32_t *asum, int rows,
                  const uint8_t *w, const float *ws, int n_out, int n_in);

static inline int32_t hsum(v128_t v) {
  v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_i32x4_extract_lane(v, 0);
}

// Largest |q| such that no i32 lane can overflow: a lane adds n_in / 4 products of |q| · 127.
static int32_t activation_limit(int n_in) {
  int64_t limit = 2147483647LL / ((int64_t)(n_in / 4 + 1) * 127);
  return limit < 32767 ? (int32_t)limit : 32767;
}

static float row_absmax(const float *x, int n) {
  v128_t vmax = wasm_f32x4_splat(0);
  for (int k = 0; k < n; k += 4) vmax = wasm_f32x4_max(vmax, wasm_f32x4_abs(wasm_v128_load(x + k)));
  float amax = 0;
  for (int i = 0; i < 4; i++) amax = ((float *)&vmax)[i] > amax ? ((float *)&vmax)[i] : amax;
  return amax;
}

// Rows to int16 (q[r][k] = round(x / scale)), with each row's scale and sum.
static void quantize_rows(int16_t *q, float *scales, int32_t *sums, const float *x, int rows, int n, int32_t qmax) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    const float amax = row_absmax(xr, n), scale = amax > 0 ? amax / (float)qmax : 1.0f;
    const v128_t inv = wasm_f32x4_splat(1.0f / scale);
    int16_t *qr = q + r * n;
    v128_t sum = wasm_i32x4_splat(0);
    for (int k = 0; k < n; k += 8) {
      v128_t a = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(xr + k), inv)));
      v128_t b = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(xr + k + 4), inv)));
      sum = wasm_i32x4_add(sum, wasm_i32x4_add(a, b));
      wasm_v128_store(qr + k, wasm_i16x8_narrow_i32x4(a, b));
    }
    scales[r] = scale;
    sums[r] = hsum(sum);
  }
}

// Rows to int8 (±127) for the relaxed kernel, with each row's scale and sum.
static void quantize_rows_i8(int8_t *q, float *scales, int32_t *sums, const float *x, int rows, int n) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    const float amax = row_absmax(xr, n), scale = amax > 0 ? amax / 127.0f : 1.0f;
    const v128_t inv = wasm_f32x4_splat(1.0f / scale);
    int8_t *qr = q + r * n;
    v128_t sum = wasm_i32x4_splat(0);
    for (int k = 0; k < n; k += 16) {
      v128_t a = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(xr + k), inv)));
      v128_t b = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(xr + k + 4), inv)));
      v128_t c = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(xr + k + 8), inv)));
      v128_t d = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(xr + k + 12), inv)));
      sum = wasm_i32x4_add(sum, wasm_i32x4_add(wasm_i32x4_add(a, b), wasm_i32x4_add(c, d)));
      wasm_v128_store(qr + k, wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(a, b), wasm_i16x8_narrow_i32x4(c, d)));
    }
    scales[r] = scale;
    sums[r] = hsum(sum);
  }
}

// Σ x·(w' − 64) from Σ x·w' and Σ x (i32 wraps; exact while the true value fits in i32, see above).
static inline float unoffset(int32_t acc, int32_t sum) {
  return (float)(int32_t)((uint32_t)acc - 64u * (uint32_t)sum);
}

// 4 weight rows × 2 activation rows.
static void tile_4x2(float *y, int ldy, const int16_t *a, int n, const uint8_t *w, const float *ws, const float *as, const int32_t *sums) {
  v128_t c00 = wasm_i32x4_splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const uint8_t *w0 = w, *w1 = w + n, *w2 = w + 2 * n, *w3 = w + 3 * n;
  const int16_t *a0 = a, *a1 = a + n;
  for (int k = 0; k < n; k += 8) {
    v128_t x0 = wasm_v128_load(a0 + k), x1 = wasm_v128_load(a1 + k);
    v128_t v = wasm_u16x8_load8x8(w0 + k);
    c00 = wasm_i32x4_add(c00, wasm_i32x4_dot_i16x8(v, x0));
    c01 = wasm_i32x4_add(c01, wasm_i32x4_dot_i16x8(v, x1));
    v = wasm_u16x8_load8x8(w1 + k);
    c10 = wasm_i32x4_add(c10, wasm_i32x4_dot_i16x8(v, x0));
    c11 = wasm_i32x4_add(c11, wasm_i32x4_dot_i16x8(v, x1));
    v = wasm_u16x8_load8x8(w2 + k);
    c20 = wasm_i32x4_add(c20, wasm_i32x4_dot_i16x8(v, x0));
    c21 = wasm_i32x4_add(c21, wasm_i32x4_dot_i16x8(v, x1));
    v = wasm_u16x8_load8x8(w3 + k);
    c30 = wasm_i32x4_add(c30, wasm_i32x4_dot_i16x8(v, x0));
    c31 = wasm_i32x4_add(c31, wasm_i32x4_dot_i16x8(v, x1));
  }
  y[0] = unoffset(hsum(c00), sums[0]) * ws[0] * as[0];
  y[1] = unoffset(hsum(c10), sums[0]) * ws[1] * as[0];
  y[2] = unoffset(hsum(c20), sums[0]) * ws[2] * as[0];
  y[3] = unoffset(hsum(c30), sums[0]) * ws[3] * as[0];
  y[ldy + 0] = unoffset(hsum(c01), sums[1]) * ws[0] * as[1];
  y[ldy + 1] = unoffset(hsum(c11), sums[1]) * ws[1] * as[1];
  y[ldy + 2] = unoffset(hsum(c21), sums[1]) * ws[2] * as[1];
  y[ldy + 3] = unoffset(hsum(c31), sums[1]) * ws[3] * as[1];
}

// 4 weight rows × 1 activation row (decode of one sequence, and an odd last row).
static void tile_4x1(float *y, const int16_t *a, int n, const uint8_t *w, const float *ws, float as, int32_t sum) {
  v128_t c0 = wasm_i32x4_splat(0), c1 = c0, c2 = c0, c3 = c0;
  const uint8_t *w0 = w, *w1 = w + n, *w2 = w + 2 * n, *w3 = w + 3 * n;
  for (int k = 0; k < n; k += 8) {
    v128_t x = wasm_v128_load(a + k);
    c0 = wasm_i32x4_add(c0, wasm_i32x4_dot_i16x8(wasm_u16x8_load8x8(w0 + k), x));
    c1 = wasm_i32x4_add(c1, wasm_i32x4_dot_i16x8(wasm_u16x8_load8x8(w1 + k), x));
    c2 = wasm_i32x4_add(c2, wasm_i32x4_dot_i16x8(wasm_u16x8_load8x8(w2 + k), x));
    c3 = wasm_i32x4_add(c3, wasm_i32x4_dot_i16x8(wasm_u16x8_load8x8(w3 + k), x));
  }
  y[0] = unoffset(hsum(c0), sum) * ws[0] * as;
  y[1] = unoffset(hsum(c1), sum) * ws[1] * as;
  y[2] = unoffset(hsum(c2), sum) * ws[2] * as;
  y[3] = unoffset(hsum(c3), sum) * ws[3] * as;
}

static float dot_1x1(const int16_t *a, int n, const uint8_t *w, int32_t sum) {
  v128_t c = wasm_i32x4_splat(0);
  for (int k = 0; k < n; k += 8) c = wasm_i32x4_add(c, wasm_i32x4_dot_i16x8(wasm_u16x8_load8x8(w + k), wasm_v128_load(a + k)));
  return unoffset(hsum(c), sum);
}

// Blocks of OUT_BLOCK weight rows stay in cache while every activation row passes over them.
#define OUT_BLOCK 64

// y[rows][w->n_out] = x[rows][w->n_in] · Wᵀ
void linear(const Model *m, float *y, const float *x, int rows, const QMatrix *mat) {
  const int n = mat->n_in, n_out = mat->n_out;
  float *qs = m->xq_scale;
  int32_t *sums = m->xq_sum;
  if (m->relaxed && n % 16 == 0 && n_out % 4 == 0) {
    quantize_rows_i8((int8_t *)m->xq, qs, sums, x, rows, n);
    relaxed_gemm(y, n_out, (const int8_t *)m->xq, qs, sums, rows, mat->w, mat->scale, n_out, n);
    return;
  }
  int16_t *q = m->xq;
  quantize_rows(q, qs, sums, x, rows, n, activation_limit(n));
  for (int o0 = 0; o0 < n_out; o0 += OUT_BLOCK) {
    int o1 = o0 + OUT_BLOCK < n_out ? o0 + OUT_BLOCK : n_out;
    int r = 0;
    for (; r + 2 <= rows; r += 2) {
      int o = o0;
      for (; o + 4 <= o1; o += 4) tile_4x2(y + r * n_out + o, n_out, q + r * n, n, mat->w + o * n, mat->scale + o, qs + r, sums + r);
      for (; o < o1; o++) {
        y[r * n_out + o] = dot_1x1(q + r * n, n, mat->w + o * n, sums[r]) * mat->scale[o] * qs[r];
        y[(r + 1) * n_out + o] = dot_1x1(q + (r + 1) * n, n, mat->w + o * n, sums[r + 1]) * mat->scale[o] * qs[r + 1];
      }
    }
    for (; r < rows; r++) {
      int o = o0;
      for (; o + 4 <= o1; o += 4) tile_4x1(y + r * n_out + o, q + r * n, n, mat->w + o * n, mat->scale + o, qs[r], sums[r]);
      for (; o < o1; o++) y[r * n_out + o] = dot_1x1(q + r * n, n, mat->w + o * n, sums[r]) * mat->scale[o] * qs[r];
    }
  }
}
