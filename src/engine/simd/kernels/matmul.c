// int8 × int16 matrix products: y[r][o] = Σ_k x[r][k] · W[o][k].
// Each activation row is quantized to int16 with one scale (symmetric; int16 costs the same
// i32x4.dot_i16x8_s as int8 and is ~256× finer). Weight rows are widened from int8 with
// v128.load8x8_s. Tiles of 4 weight rows × 2 activation rows: each loaded weight vector serves
// both activation rows and each activation vector four weight rows (14 of the 16 SIMD registers).
#include "simd.h"

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

static void quantize_rows(int16_t *q, float *scales, const float *x, int rows, int n, int32_t qmax) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    v128_t vmax = wasm_f32x4_splat(0);
    for (int k = 0; k < n; k += 4) vmax = wasm_f32x4_max(vmax, wasm_f32x4_abs(wasm_v128_load(xr + k)));
    float amax = wasm_f32x4_extract_lane(vmax, 0);
    for (int i = 1; i < 4; i++) {
      float v = ((float *)&vmax)[i];
      if (v > amax) amax = v;
    }
    float scale = amax > 0 ? amax / (float)qmax : 1.0f;
    v128_t inv = wasm_f32x4_splat(1.0f / scale);
    int16_t *qr = q + r * n;
    for (int k = 0; k < n; k += 8) {
      v128_t a = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(xr + k), inv)));
      v128_t b = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(xr + k + 4), inv)));
      wasm_v128_store(qr + k, wasm_i16x8_narrow_i32x4(a, b));
    }
    scales[r] = scale;
  }
}

// 4 weight rows × 2 activation rows.
static void tile_4x2(float *y, int ldy, const int16_t *a, int n, const int8_t *w, const float *ws, const float *as) {
  v128_t c00 = wasm_i32x4_splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const int8_t *w0 = w, *w1 = w + n, *w2 = w + 2 * n, *w3 = w + 3 * n;
  const int16_t *a0 = a, *a1 = a + n;
  for (int k = 0; k < n; k += 8) {
    v128_t x0 = wasm_v128_load(a0 + k), x1 = wasm_v128_load(a1 + k);
    v128_t v = wasm_i16x8_load8x8(w0 + k);
    c00 = wasm_i32x4_add(c00, wasm_i32x4_dot_i16x8(v, x0));
    c01 = wasm_i32x4_add(c01, wasm_i32x4_dot_i16x8(v, x1));
    v = wasm_i16x8_load8x8(w1 + k);
    c10 = wasm_i32x4_add(c10, wasm_i32x4_dot_i16x8(v, x0));
    c11 = wasm_i32x4_add(c11, wasm_i32x4_dot_i16x8(v, x1));
    v = wasm_i16x8_load8x8(w2 + k);
    c20 = wasm_i32x4_add(c20, wasm_i32x4_dot_i16x8(v, x0));
    c21 = wasm_i32x4_add(c21, wasm_i32x4_dot_i16x8(v, x1));
    v = wasm_i16x8_load8x8(w3 + k);
    c30 = wasm_i32x4_add(c30, wasm_i32x4_dot_i16x8(v, x0));
    c31 = wasm_i32x4_add(c31, wasm_i32x4_dot_i16x8(v, x1));
  }
  y[0] = hsum(c00) * ws[0] * as[0];
  y[1] = hsum(c10) * ws[1] * as[0];
  y[2] = hsum(c20) * ws[2] * as[0];
  y[3] = hsum(c30) * ws[3] * as[0];
  y[ldy + 0] = hsum(c01) * ws[0] * as[1];
  y[ldy + 1] = hsum(c11) * ws[1] * as[1];
  y[ldy + 2] = hsum(c21) * ws[2] * as[1];
  y[ldy + 3] = hsum(c31) * ws[3] * as[1];
}

// 4 weight rows × 1 activation row (decode of one sequence, and an odd last row).
static void tile_4x1(float *y, const int16_t *a, int n, const int8_t *w, const float *ws, float as) {
  v128_t c0 = wasm_i32x4_splat(0), c1 = c0, c2 = c0, c3 = c0;
  const int8_t *w0 = w, *w1 = w + n, *w2 = w + 2 * n, *w3 = w + 3 * n;
  for (int k = 0; k < n; k += 8) {
    v128_t x = wasm_v128_load(a + k);
    c0 = wasm_i32x4_add(c0, wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w0 + k), x));
    c1 = wasm_i32x4_add(c1, wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w1 + k), x));
    c2 = wasm_i32x4_add(c2, wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w2 + k), x));
    c3 = wasm_i32x4_add(c3, wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w3 + k), x));
  }
  y[0] = hsum(c0) * ws[0] * as;
  y[1] = hsum(c1) * ws[1] * as;
  y[2] = hsum(c2) * ws[2] * as;
  y[3] = hsum(c3) * ws[3] * as;
}

static float dot_1x1(const int16_t *a, int n, const int8_t *w) {
  v128_t c = wasm_i32x4_splat(0);
  for (int k = 0; k < n; k += 8) c = wasm_i32x4_add(c, wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w + k), wasm_v128_load(a + k)));
  return (float)hsum(c);
}

// Blocks of OUT_BLOCK weight rows stay in cache while every activation row passes over them.
#define OUT_BLOCK 64

// y[rows][w->n_out] = x[rows][w->n_in] · Wᵀ
void linear(const Model *m, float *y, const float *x, int rows, const QMatrix *mat) {
  const int n = mat->n_in, n_out = mat->n_out;
  int16_t *q = m->xq;
  float *qs = m->xq_scale;
  quantize_rows(q, qs, x, rows, n, activation_limit(n));
  for (int o0 = 0; o0 < n_out; o0 += OUT_BLOCK) {
    int o1 = o0 + OUT_BLOCK < n_out ? o0 + OUT_BLOCK : n_out;
    int r = 0;
    for (; r + 2 <= rows; r += 2) {
      int o = o0;
      for (; o + 4 <= o1; o += 4) tile_4x2(y + r * n_out + o, n_out, q + r * n, n, mat->w + o * n, mat->scale + o, qs + r);
      for (; o < o1; o++) {
        y[r * n_out + o] = dot_1x1(q + r * n, n, mat->w + o * n) * mat->scale[o] * qs[r];
        y[(r + 1) * n_out + o] = dot_1x1(q + (r + 1) * n, n, mat->w + o * n) * mat->scale[o] * qs[r + 1];
      }
    }
    for (; r < rows; r++) {
      int o = o0;
      for (; o + 4 <= o1; o += 4) tile_4x1(y + r * n_out + o, q + r * n, n, mat->w + o * n, mat->scale + o, qs[r]);
      for (; o < o1; o++) y[r * n_out + o] = dot_1x1(q + r * n, n, mat->w + o * n) * mat->scale[o] * qs[r];
    }
  }
}
