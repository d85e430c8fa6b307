// Element-wise kernels in f32: exp, RMSNorm, rotary embedding, SwiGLU, residual and bias add, softmax.
#include "simd.h"

// e^x for four lanes: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6 polynomial (relative error
// ~2e-7, like expf), 2^n built in the exponent bits. Inputs below -87 give 0, above 88 are clamped.
v128_t exp_f32x4(v128_t x) {
  const v128_t lo = wasm_f32x4_splat(-87.3f), hi = wasm_f32x4_splat(88.3f);
  v128_t under = wasm_f32x4_lt(x, lo);
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, lo), hi);  // pmin/pmax: one instruction each on x64 (NaN stays NaN)
  v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t p = wasm_f32x4_splat(1.0f / 720);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 120));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 24));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 6));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(0.5f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  // 2^n: n in [-126, 128]; split in two factors so 2^128 (x near 88.7) does not overflow the exponent.
  v128_t ni = wasm_i32x4_trunc_sat_f32x4(n);
  v128_t half = wasm_i32x4_shr(ni, 1);
  v128_t s1 = wasm_i32x4_shl(wasm_i32x4_add(half, wasm_i32x4_splat(127)), 23);
  v128_t s2 = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_sub(ni, half), wasm_i32x4_splat(127)), 23);
  p = wasm_f32x4_mul(wasm_f32x4_mul(p, s1), s2);
  return wasm_v128_andnot(p, under);
}

float exp_f32(float x) {
  return wasm_f32x4_extract_lane(exp_f32x4(wasm_f32x4_splat(x)), 0);
}

static float hsum_f32(v128_t v) {
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  v = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(v, 0);
}

// y = x / √(mean(x²) + eps) · weight, per row of dim values (dim a multiple of 4).
void rmsnorm(float *y, const float *x, const float *weight, int rows, int dim, float eps) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + r * dim;
    float *yr = y + r * dim;
    v128_t ss = wasm_f32x4_splat(0);
    for (int i = 0; i < dim; i += 4) {
      v128_t v = wasm_v128_load(xr + i);
      ss = wasm_f32x4_add(ss, wasm_f32x4_mul(v, v));
    }
    v128_t inv = wasm_f32x4_splat(1.0f / __builtin_sqrtf(hsum_f32(ss) / dim + eps));
    for (int i = 0; i < dim; i += 4) {
      wasm_v128_store(yr + i, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(xr + i), inv), wasm_v128_load(weight + i)));
    }
  }
}

// Rotary embedding in Hugging Face's rotate-half layout, in place, for `heads` consecutive heads at
// one position: (x1, x2) = (v[i], v[i + d/2]) → (x1·cos − x2·sin, x2·cos + x1·sin), cos/sin[d/2].
void rope(float *v, int heads, int head_dim, const float *cos, const float *sin) {
  const int half = head_dim / 2;
  for (int h = 0; h < heads; h++, v += head_dim) {
    int i = 0;
    for (; i + 4 <= half; i += 4) {
      v128_t x1 = wasm_v128_load(v + i), x2 = wasm_v128_load(v + half + i);
      v128_t c = wasm_v128_load(cos + i), s = wasm_v128_load(sin + i);
      wasm_v128_store(v + i, wasm_f32x4_sub(wasm_f32x4_mul(x1, c), wasm_f32x4_mul(x2, s)));
      wasm_v128_store(v + half + i, wasm_f32x4_add(wasm_f32x4_mul(x2, c), wasm_f32x4_mul(x1, s)));
    }
    for (; i < half; i++) {
      float x1 = v[i], x2 = v[half + i];
      v[i] = x1 * cos[i] - x2 * sin[i];
      v[half + i] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

// act[r] = silu(gate) · up, where gate_up[r] = [gate (ffn) | up (ffn)]; ffn a multiple of 4.
void swiglu(float *act, const float *gate_up, int rows, int ffn) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  for (int r = 0; r < rows; r++) {
    const float *g = gate_up + r * 2 * ffn, *u = g + ffn;
    float *a = act + r * ffn;
    for (int i = 0; i < ffn; i += 4) {
      v128_t x = wasm_v128_load(g + i);
      v128_t sig = wasm_f32x4_div(one, wasm_f32x4_add(one, exp_f32x4(wasm_f32x4_neg(x))));
      wasm_v128_store(a + i, wasm_f32x4_mul(wasm_f32x4_mul(x, sig), wasm_v128_load(u + i)));
    }
  }
}

void add_rows(float *x, const float *y, int n) {
  for (int i = 0; i < n; i += 4) wasm_v128_store(x + i, wasm_f32x4_add(wasm_v128_load(x + i), wasm_v128_load(y + i)));
}

// x[r] += bias for each of `rows` rows of n values (n a multiple of 4).
void add_bias(float *x, const float *bias, int rows, int n) {
  for (int r = 0; r < rows; r++, x += n) add_rows(x, bias, n);
}

// v = softmax(v · inv_temperature) in place, any n ≥ 1.
void softmax(float *v, int n, float inv_temperature) {
  const int n4 = n & ~3;
  float mx = v[0];
  v128_t vmax = wasm_f32x4_splat(mx);
  for (int i = 0; i < n4; i += 4) vmax = wasm_f32x4_max(vmax, wasm_v128_load(v + i));
  for (int i = 0; i < 4; i++) mx = ((float *)&vmax)[i] > mx ? ((float *)&vmax)[i] : mx;
  for (int i = n4; i < n; i++) mx = v[i] > mx ? v[i] : mx;
  v128_t m = wasm_f32x4_splat(mx), t = wasm_f32x4_splat(inv_temperature), sum4 = wasm_f32x4_splat(0);
  for (int i = 0; i < n4; i += 4) {
    v128_t e = exp_f32x4(wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(v + i), m), t));
    wasm_v128_store(v + i, e);
    sum4 = wasm_f32x4_add(sum4, e);
  }
  float sum = hsum_f32(sum4);
  for (int i = n4; i < n; i++) sum += (v[i] = exp_f32((v[i] - mx) * inv_temperature));
  const float inv = 1.0f / sum;
  v128_t vinv = wasm_f32x4_splat(inv);
  for (int i = 0; i < n4; i += 4) wasm_v128_store(v + i, wasm_f32x4_mul(wasm_v128_load(v + i), vinv));
  for (int i = n4; i < n; i++) v[i] *= inv;
}

// max |x[i]| over n values (a multiple of 4): an activation row's or a head's quantization range.
float absmax(const float *x, int n) {
  v128_t vmax = wasm_f32x4_splat(0);
  for (int i = 0; i < n; i += 4) vmax = wasm_f32x4_max(vmax, wasm_f32x4_abs(wasm_v128_load(x + i)));
  vmax = wasm_f32x4_max(vmax, wasm_i32x4_shuffle(vmax, vmax, 2, 3, 0, 1));
  vmax = wasm_f32x4_max(vmax, wasm_i32x4_shuffle(vmax, vmax, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(vmax, 0);
}
