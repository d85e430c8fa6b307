// Grouped-query attention over a paged KV cache.
// A sequence's cache is a list of pages of page_size positions (a multiple of 4); a page holds every
// layer. The query heads of a group (h = g·G + j) share KV head g, so each key and value vector is
// read once per group pass. Two element types (Model.kv_int8):
//  f32:  [layer][key | value][kv_head][page_size][head_dim] f32; scores and weighted values in f32.
//  int8: [layer][key | value][kv_head][page_size · head_dim] int8: keys [position][head_dim], values
//        in groups of four positions [position / 4][head_dim][4] (one 16-byte load holds 4
//        dimensions of 4 positions, what both dot-product instructions below take); then the scales
//        [layer][key | value][kv_head][block][page_size] f32, and the keys' sums
//        [layer][kv_head][block][page_size] f32. Each block of KV_BLOCK dimensions (the whole head
//        when head_dim is not a multiple of it) of a position's key (value) is round(k / s) with
//        s = max|k| / 127. Scores are integer dot products of the int8 keys with the query, scaled
//        per block; the values are summed in integers too, with the weights p[t] · s_v[t] of each
//        block quantized (softmax weights are in [0, 1]: the largest keeps 14–15 bits, small ones
//        their absolute precision).
//        Plain SIMD128: the query as int16, i32x4.dot_i16x8_s on widened keys and values (15-bit
//        weights). Relaxed SIMD (relaxed.wat): the query as 14 bits + 8192 per block in two
//        7-bit planes (the unsigned operand; the keys' sums take the 8192 back out), the weights as
//        two 7-bit halves of 14 bits too; 16 multiply-adds per i32x4.relaxed_dot_i8x16_i7x16_add_s.
#include "simd.h"

// relaxed.wasm's f32 attention loops (fused multiply-adds); only called when m->relaxed.
#define RELAXED(name) __attribute__((import_module("env"), import_name(name)))
RELAXED("relaxed_scores") void relaxed_scores(float *out, int n, const float *q, int G, const float *k, int keys, int hd);
RELAXED("relaxed_values") void relaxed_values(float *o, const float *p, const float *v, int count, int hd);
RELAXED("relaxed_scores_i8") void relaxed_scores_i8(float *out, int n, const uint8_t *q, const float *qs, int G, const int8_t *k, int keys, int hd, int B,
                                                    const float *sk, const float *ksum, int P);
RELAXED("relaxed_values_i8") void relaxed_values_i8(int32_t *acc, const uint8_t *hi, const uint8_t *lo, const int8_t *v, int count, int hd, int len);

static inline float *kv_at(const Model *m, const Row *row, int pos, int layer, int value, int kv_head) {
  const int P = m->page_size;
  float *page = row->pages[pos / P];
  return page + ((((layer * 2 + value) * m->n_kv_heads + kv_head) * P) + pos % P) * m->head_dim;
}

#define KV_BLOCK 32

// Dimensions per scale of the int8 cache, and blocks per head.
static inline int kv_block(const Model *m) {
  return m->head_dim % KV_BLOCK ? m->head_dim : KV_BLOCK;
}

// Position pos's int8 key.
static inline int8_t *k8_at(const Model *m, const Row *row, int pos, int layer, int kv_head) {
  const int P = m->page_size;
  int8_t *page = (int8_t *)row->pages[pos / P];
  return page + ((((layer * 2) * m->n_kv_heads + kv_head) * P) + pos % P) * m->head_dim;
}

// The group of four positions holding pos's value: dimension d of position pos is byte 4·d + pos % 4.
static inline int8_t *v8_group(const Model *m, const Row *row, int pos, int layer, int kv_head) {
  const int P = m->page_size;
  int8_t *page = (int8_t *)row->pages[pos / P];
  return page + ((((layer * 2 + 1) * m->n_kv_heads + kv_head) * P) + (pos % P & ~3)) * m->head_dim;
}

// The scale of block b at pos; the scales of consecutive positions are consecutive.
static inline float *kv8_scale_at(const Model *m, const Row *row, int pos, int layer, int value, int kv_head, int b) {
  const int P = m->page_size, nb = m->head_dim / kv_block(m);
  int8_t *page = (int8_t *)row->pages[pos / P];
  float *scales = (float *)(page + m->n_layers * 2 * m->n_kv_heads * P * m->head_dim);
  return scales + (((layer * 2 + value) * m->n_kv_heads + kv_head) * nb + b) * P + pos % P;
}

// The sum of block b of pos's int8 key (what the relaxed scores' query + 8192 adds); laid out as the scales.
static inline float *k8_sum_at(const Model *m, const Row *row, int pos, int layer, int kv_head, int b) {
  const int P = m->page_size, nb = m->head_dim / kv_block(m);
  float *sums = kv8_scale_at(m, row, pos - pos % P, 0, 0, 0, 0) + m->n_layers * 2 * m->n_kv_heads * nb * P;
  return sums + ((layer * m->n_kv_heads + kv_head) * nb + b) * P + pos % P;
}

// n values (a multiple of 8) to int8 with one scale; returns the scale.
static float quantize_i8(int8_t *q, const float *x, int n) {
  const float amax = absmax(x, n), scale = amax > 0 ? amax / 127.0f : 1.0f;
  const v128_t inv = wasm_f32x4_splat(1.0f / scale);
  for (int i = 0; i < n; i += 8) {
    v128_t a = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + i), inv)));
    v128_t b = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + i + 4), inv)));
    v128_t v = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(a, b), wasm_i16x8_narrow_i32x4(a, b));
    wasm_v128_store64_lane(q + i, v, 0);
  }
  return scale;
}

// The same to int16 (the query: the key's 8 bits are the coarser factor).
static float quantize_i16(int16_t *q, const float *x, int n) {
  const float amax = absmax(x, n), scale = amax > 0 ? amax / 32767.0f : 1.0f;
  const v128_t inv = wasm_f32x4_splat(1.0f / scale);
  for (int i = 0; i < n; i += 8) {
    v128_t a = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + i), inv)));
    v128_t b = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + i + 4), inv)));
    wasm_v128_store(q + i, wasm_i16x8_narrow_i32x4(a, b));
  }
  return scale;
}

// n values (a multiple of 4) to q = round(x / s) + 8192 in 1..16383 with s = max|x| / 8191, as two
// planes of relaxed SIMD's unsigned 7-bit operand: hi = q >> 7, lo = q & 127. Returns s.
// Four 14-bit values q (i32 lanes in 0..16383) as relaxed SIMD's two unsigned 7-bit operands:
// hi[0..4) = q >> 7, lo[0..4) = q & 127.
static inline void store_halves(uint8_t *hi, uint8_t *lo, v128_t q) {
  const v128_t h = wasm_u32x4_shr(q, 7), l = wasm_v128_and(q, wasm_i32x4_splat(127));
  const v128_t bytes = wasm_u8x16_narrow_i16x8(wasm_u16x8_narrow_i32x4(h, h), wasm_u16x8_narrow_i32x4(l, l));  // h at 0..3, l at 8..11
  wasm_v128_store32_lane(hi, bytes, 0);
  wasm_v128_store32_lane(lo, bytes, 2);
}

static float quantize_q14(uint8_t *hi, uint8_t *lo, const float *x, int n) {
  const float amax = absmax(x, n), scale = amax > 0 ? amax / 8191.0f : 1.0f;
  const v128_t inv = wasm_f32x4_splat(1.0f / scale), offset = wasm_i32x4_splat(8192);
  for (int i = 0; i < n; i += 4)
    store_halves(hi + i, lo + i, wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + i), inv))), offset));
  return scale;
}

// Copy each row's new key and value (qkv row: q heads, k heads, v heads) into its page.
void kv_store(const Model *m, int layer, const Row *rows, int n_rows, const float *qkv) {
  const int hd = m->head_dim, KV = m->n_kv_heads, width = (m->n_heads + 2 * KV) * hd;
  for (int r = 0; r < n_rows; r++) {
    const float *k = qkv + r * width + m->n_heads * hd, *v = k + KV * hd;
    const int pos = rows[r].position;
    for (int g = 0; g < KV; g++) {
      if (m->kv_int8) {
        const int B = kv_block(m);
        int8_t *kd = k8_at(m, &rows[r], pos, layer, g), *vg = v8_group(m, &rows[r], pos, layer, g) + pos % 4;
        int8_t vq[hd];
        for (int b = 0; b * B < hd; b++) {
          *kv8_scale_at(m, &rows[r], pos, layer, 0, g, b) = quantize_i8(kd + b * B, k + g * hd + b * B, B);
          *kv8_scale_at(m, &rows[r], pos, layer, 1, g, b) = quantize_i8(vq + b * B, v + g * hd + b * B, B);
          int sum = 0;
          for (int i = b * B; i < (b + 1) * B; i++) sum += kd[i];
          *k8_sum_at(m, &rows[r], pos, layer, g, b) = (float)sum;
        }
        for (int i = 0; i < hd; i++) vg[4 * i] = vq[i];
        continue;
      }
      float *kd = kv_at(m, &rows[r], pos, layer, 0, g);
      float *vd = kv_at(m, &rows[r], pos, layer, 1, g);
      for (int i = 0; i < hd; i += 4) {
        wasm_v128_store(kd + i, wasm_v128_load(k + g * hd + i));
        wasm_v128_store(vd + i, wasm_v128_load(v + g * hd + i));
      }
    }
  }
}

static inline float hsum(v128_t s) {
  s = wasm_f32x4_add(s, wasm_i32x4_shuffle(s, s, 2, 3, 0, 1));
  s = wasm_f32x4_add(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(s, 0);
}

static inline float hmax(v128_t s) {
  s = wasm_f32x4_pmax(s, wasm_i32x4_shuffle(s, s, 2, 3, 0, 1));
  s = wasm_f32x4_pmax(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(s, 0);
}

static inline int32_t hsum_i32(v128_t s) {
  s = wasm_i32x4_add(s, wasm_i32x4_shuffle(s, s, 2, 3, 0, 1));
  s = wasm_i32x4_add(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
  return wasm_i32x4_extract_lane(s, 0);
}

// q · k over head_dim values; four accumulators so the additions do not wait on each other.
static inline float dot(const float *a, const float *b, int n) {
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0;
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4)));
    s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_v128_load(a + i + 8), wasm_v128_load(b + i + 8)));
    s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_v128_load(a + i + 12), wasm_v128_load(b + i + 12)));
  }
  for (; i < n; i += 4) s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  return hsum(wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3)));
}

// [s0₀+s0₂, s0₁+s0₃, s1₀+s1₂, s1₁+s1₃], the same for s2, s3, then pairwise: [Σs0, Σs1, Σs2, Σs3].
#define TRANSPOSE_ADD(add, s0, s1, s2, s3) ({                                                          \
  v128_t a_ = add(wasm_i32x4_shuffle(s0, s1, 0, 1, 4, 5), wasm_i32x4_shuffle(s0, s1, 2, 3, 6, 7)); \
  v128_t b_ = add(wasm_i32x4_shuffle(s2, s3, 0, 1, 4, 5), wasm_i32x4_shuffle(s2, s3, 2, 3, 6, 7)); \
  add(wasm_i32x4_shuffle(a_, b_, 0, 2, 4, 6), wasm_i32x4_shuffle(a_, b_, 1, 3, 5, 7));             \
})

// [q·k0, q·k1, q·k2, q·k3] for four consecutive keys (stride hd): each query vector is loaded once
// for the four keys, and the four sums come out as one vector (no horizontal add per key).
static inline v128_t dot4(const float *q, const float *k, int hd) {
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0;
  for (int i = 0; i < hd; i += 4) {
    v128_t x = wasm_v128_load(q + i);
    s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(x, wasm_v128_load(k + i)));
    s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(x, wasm_v128_load(k + hd + i)));
    s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(x, wasm_v128_load(k + 2 * hd + i)));
    s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(x, wasm_v128_load(k + 3 * hd + i)));
  }
  return TRANSPOSE_ADD(wasm_f32x4_add, s0, s1, s2, s3);
}

#define INLINE static inline __attribute__((always_inline))

// The int8 cache's integer scores of J query heads (J = 1 or 2, int16, J·hd apart) against four
// consecutive int8 keys (stride hd) over len dimensions: each key vector is loaded and widened once
// for the J heads. out[j] = [Σ q_j·k0, …, Σ q_j·k3].
INLINE void dot4_i8(v128_t *out, const int16_t *q, int J, const int8_t *k, int hd, int len) {
  v128_t s[2][4];
  for (int j = 0; j < J; j++) for (int u = 0; u < 4; u++) s[j][u] = wasm_i32x4_splat(0);
  for (int i = 0; i < len; i += 8) {
    v128_t kv[4];
    for (int u = 0; u < 4; u++) kv[u] = wasm_i16x8_load8x8(k + u * hd + i);
    for (int j = 0; j < J; j++) {
      const v128_t x = wasm_v128_load(q + j * hd + i);
      for (int u = 0; u < 4; u++) s[j][u] = wasm_i32x4_add(s[j][u], wasm_i32x4_dot_i16x8(x, kv[u]));
    }
  }
  for (int j = 0; j < J; j++) out[j] = TRANSPOSE_ADD(wasm_i32x4_add, s[j][0], s[j][1], s[j][2], s[j][3]);
}

static inline int32_t dot_i8(const int16_t *q, const int8_t *k, int len) {
  v128_t s = wasm_i32x4_splat(0);
  for (int i = 0; i < len; i += 8) s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(wasm_v128_load(q + i), wasm_i16x8_load8x8(k + i)));
  return hsum_i32(s);
}

// o = Σ_t p[t] · v_t for one query head, 16 dimensions at a time so that the 4 accumulators stay
// in registers while the positions stream past (the G heads of a group each pass over V; one KV
// head's values are ≤ 128 KB at 512 positions, so the passes after the first read from cache).
static void weighted_values(const Model *m, const Row *row, int layer, int g, int n, const float *p, float *o) {
  const int hd = m->head_dim, P = m->page_size;
  if (m->relaxed && hd % 32 == 0) {
    for (int i = 0; i < hd; i += 4) wasm_v128_store(o + i, wasm_f32x4_splat(0));
    for (int t0 = 0; t0 < n; t0 += P) relaxed_values(o, p + t0, kv_at(m, row, t0, layer, 1, g), (t0 + P < n ? t0 + P : n) - t0, hd);
    return;
  }
  for (int i0 = 0; i0 < hd; i0 += 16) {
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
    const int w = hd - i0 < 16 ? (hd - i0) / 4 : 4;  // vectors in this block (head_dim % 4 == 0)
    for (int t0 = 0; t0 < n; t0 += P) {
      const float *v = kv_at(m, row, t0, layer, 1, g) + i0;
      const int end = t0 + P < n ? t0 + P : n;
      if (w == 4) {
        for (int t = t0; t < end; t++, v += hd) {
          v128_t pt = wasm_f32x4_splat(p[t]);
          a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(pt, wasm_v128_load(v)));
          a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(pt, wasm_v128_load(v + 4)));
          a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(pt, wasm_v128_load(v + 8)));
          a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(pt, wasm_v128_load(v + 12)));
        }
      } else {
        for (int t = t0; t < end; t++, v += hd) {
          v128_t pt = wasm_f32x4_splat(p[t]);
          a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(pt, wasm_v128_load(v)));
          if (w > 1) a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(pt, wasm_v128_load(v + 4)));
          if (w > 2) a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(pt, wasm_v128_load(v + 8)));
        }
      }
    }
    wasm_v128_store(o + i0, a0);
    if (w > 1) wasm_v128_store(o + i0 + 4, a1);
    if (w > 2) wasm_v128_store(o + i0 + 8, a2);
    if (w > 3) wasm_v128_store(o + i0 + 12, a3);
  }
}

// f such that round(w[t] · f) for one block's value weights w[t] = p[t] · s_v[t] (t < n) keeps
// `bits` bits for the largest, capped so that Σ_t round(w[t] · f) · 127 stays below 2^31 (the i32
// sums cannot overflow); 0 when every weight is 0.
static float weight_factor(const Model *m, const Row *row, int layer, int g, int b, int n, const float *p, float top) {
  const int P = m->page_size;
  v128_t vmax = wasm_f32x4_splat(0), vsum = vmax;
  float wmax = 0, wsum = 0;
  for (int t0 = 0; t0 < n; t0 += P) {
    const float *s = kv8_scale_at(m, row, t0, layer, 1, g, b);
    const int end = t0 + P < n ? t0 + P : n;
    int t = t0;
    for (; t + 4 <= end; t += 4) {
      const v128_t w = wasm_f32x4_mul(wasm_v128_load(p + t), wasm_v128_load(s + t - t0));
      vmax = wasm_f32x4_pmax(vmax, w);
      vsum = wasm_f32x4_add(vsum, w);
    }
    for (; t < end; t++) {
      const float w = p[t] * s[t - t0];
      wmax = w > wmax ? w : wmax;
      wsum += w;
    }
  }
  const float vm = hmax(vmax);
  wmax = vm > wmax ? vm : wmax;
  wsum += hsum(vsum);
  const float f = wmax > 0 ? top / wmax : 0;
  const float cap = wsum > 0 ? (16.5e6f - (float)n) / wsum : f;  // Σ wq ≤ f·Σw + n/2 stays < 2^31 / 127
  return cap < f ? cap : f;
}

// The int8 cache's o_j = Σ_t p_j[t] · s_v[t] · v_t for J query heads at once (J = 1 or 2: each
// loaded and widened value vector serves both), block by block: each head's weights p[t]·s_v[t] of
// the block to int16 wq_j (scratch, n4 = n rounded up to 4 apart, zeros after n), then four
// positions at a time: one 16-byte load holds 4 dimensions of the group's 4 positions; widened, and
// against [wq_t..wq_t+3] twice, i32x4.dot_i16x8_s gives two positions' terms per lane, which the
// end adds pairwise. A group past n reads positions of its page with weight 0.
INLINE void weighted_values_i8(const Model *m, const Row *row, int layer, int g, int n, const float *p, int J, int16_t *wq, float *o) {
  const int hd = m->head_dim, P = m->page_size, B = kv_block(m), n4 = (n + 3) & ~3;
  for (int b = 0; b * B < hd; b++) {
    float f[2];
    for (int j = 0; j < J; j++) {
      const float *pj = p + j * n;
      int16_t *wj = wq + j * n4;
      const float fj = f[j] = weight_factor(m, row, layer, g, b, n, pj, 32767.0f);
      const v128_t vf = wasm_f32x4_splat(fj);
      for (int t0 = 0; t0 < n; t0 += P) {
        const float *s = kv8_scale_at(m, row, t0, layer, 1, g, b);
        const int end = t0 + P < n ? t0 + P : n;
        int t = t0;
        for (; t + 4 <= end; t += 4) {
          v128_t w = wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(pj + t), wasm_v128_load(s + t - t0)), vf);
          v128_t q = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(w));
          wasm_v128_store64_lane(wj + t, wasm_i16x8_narrow_i32x4(q, q), 0);
        }
        for (; t < end; t++) wj[t] = (int16_t)__builtin_nearbyintf(pj[t] * s[t - t0] * fj);
      }
      for (int t = n; t < n4; t++) wj[t] = 0;
    }
    for (int i0 = b * B; i0 < (b + 1) * B; i0 += 8) {  // head_dim % 8 == 0
      v128_t a[2][4];
      for (int j = 0; j < J; j++) for (int c = 0; c < 4; c++) a[j][c] = wasm_i32x4_splat(0);
      for (int t0 = 0; t0 < n4; t0 += P) {
        const int8_t *v = v8_group(m, row, t0, layer, g) + 4 * i0;
        const int count = t0 + P < n4 ? P : n4 - t0;
        for (int t = t0; t < t0 + count; t += 4, v += 4 * hd) {
          const v128_t x0 = wasm_v128_load(v), x1 = wasm_v128_load(v + 16);
          const v128_t e[4] = {wasm_i16x8_extend_low_i8x16(x0), wasm_i16x8_extend_high_i8x16(x0),
                               wasm_i16x8_extend_low_i8x16(x1), wasm_i16x8_extend_high_i8x16(x1)};
          for (int j = 0; j < J; j++) {
            const v128_t w = wasm_v128_load64_splat(wq + j * n4 + t);
            for (int c = 0; c < 4; c++) a[j][c] = wasm_i32x4_add(a[j][c], wasm_i32x4_dot_i16x8(e[c], w));
          }
        }
      }
      for (int j = 0; j < J; j++) {
        const v128_t vinv = wasm_f32x4_splat(f[j] > 0 ? 1.0f / f[j] : 0);
        // a[c] = [d: t0+t1, d: t2+t3, d+1: t0+t1, d+1: t2+t3] for d = i0 + 2c: sum the pairs.
        for (int c = 0; c < 4; c += 2) {
          const v128_t sum = wasm_i32x4_add(wasm_i32x4_shuffle(a[j][c], a[j][c + 1], 0, 2, 4, 6), wasm_i32x4_shuffle(a[j][c], a[j][c + 1], 1, 3, 5, 7));
          wasm_v128_store(o + j * hd + i0 + 2 * c, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(sum), vinv));
        }
      }
    }
  }
}

// The relaxed value weights' factor per block for KV head g's first n positions:
// f[b] = top / max_t s_v[t][b], so that round(e · s_v · f) ≤ top for softmax numerators e ≤ 1 (the
// largest weight keeps 13–14 bits without a pass over each head's exact values). top = 16383 (14
// bits), less past 1,000 positions so that Σ_t round(w[t]) · 127 stays below 2^31. Once per group:
// the G heads share the scales.
static void value_factors(const Model *m, const Row *row, int layer, int g, int n, float *f) {
  const int P = m->page_size, nb = m->head_dim / kv_block(m);
  const float top = n <= 1000 ? 16383.0f : (16.5e6f - (float)n) / (float)n;  // Σ w ≤ top · n + n/2 < 2^31 / 127
  for (int b = 0; b < nb; b++) {
    v128_t smax = wasm_f32x4_splat(0);
    for (int t0 = 0; t0 < n; t0 += P) {
      const int end = t0 + P < n ? t0 + P : n;
      const float *s = kv8_scale_at(m, row, t0, layer, 1, g, b) - t0;
      int t = t0;
      for (; t + 4 <= end; t += 4) smax = wasm_f32x4_pmax(smax, wasm_v128_load(s + t));
      for (; t < end; t++) smax = wasm_f32x4_pmax(smax, wasm_f32x4_splat(s[t]));
    }
    const float sb = hmax(smax);
    f[b] = sb > 0 ? top / sb : 0;
  }
}

// The same for one query head on relaxed SIMD, from its scores x (n floats), with the softmax folded
// into the weights: one pass for the largest score, one for e[t] = e^(x[t] − max) (≤ 1) and, per
// block, round(e[t] · s_v[t] · f[b]) (value_factors) as 14 bits split into two 7-bit bytes hi / lo
// (scratch w8: nb · 2 · n4 bytes). relaxed.wat's values_i8 sums them page by page; one scale
// 1 / (f · Σ e) per block applies the softmax's normalisation.
static void weighted_values_i8_relaxed(const Model *m, const Row *row, int layer, int g, int n, const float *x, const float *f, uint8_t *w8, float *o) {
  const int hd = m->head_dim, P = m->page_size, B = kv_block(m), nb = hd / B, n4 = (n + 3) & ~3;
  int32_t acc[B] __attribute__((aligned(16)));
  v128_t vmax = wasm_f32x4_splat(-__builtin_inff()), vf[nb];
  int i = 0;
  for (; i + 4 <= n; i += 4) vmax = wasm_f32x4_pmax(vmax, wasm_v128_load(x + i));
  for (; i < n; i++) vmax = wasm_f32x4_pmax(vmax, wasm_f32x4_splat(x[i]));
  const float mx = hmax(vmax);
  for (int b = 0; b < nb; b++) vf[b] = wasm_f32x4_splat(f[b]);
  const v128_t vmx = wasm_f32x4_splat(mx);
  v128_t vesum = wasm_f32x4_splat(0);
  float esum = 0;
  for (int t0 = 0; t0 < n; t0 += P) {
    const int end = t0 + P < n ? t0 + P : n;
    const float *s = kv8_scale_at(m, row, t0, layer, 1, g, 0) - t0;  // block b of position t: s[b · P + t]
    int t = t0;
    for (; t + 4 <= end; t += 4) {
      const v128_t e = exp_f32x4(wasm_f32x4_sub(wasm_v128_load(x + t), vmx));
      vesum = wasm_f32x4_add(vesum, e);
      for (int b = 0; b < nb; b++)
        store_halves(w8 + 2 * b * n4 + t, w8 + (2 * b + 1) * n4 + t,
                     wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(e, wasm_f32x4_mul(wasm_v128_load(s + b * P + t), vf[b])))));
    }
    for (; t < end; t++) {
      const float e = exp_f32(x[t] - mx);
      esum += e;
      for (int b = 0; b < nb; b++) {
        const int w = (int)__builtin_nearbyintf(e * s[b * P + t] * f[b]);
        w8[2 * b * n4 + t] = (uint8_t)(w >> 7), w8[(2 * b + 1) * n4 + t] = (uint8_t)(w & 127);
      }
    }
  }
  esum += hsum(vesum);
  for (int b = 0; b < nb; b++) {
    uint8_t *hi = w8 + 2 * b * n4, *lo = hi + n4;
    for (int t = n; t < n4; t++) hi[t] = lo[t] = 0;
    for (int i = 0; i < B; i += 4) wasm_v128_store(acc + i, wasm_i32x4_splat(0));
    for (int t0 = 0; t0 < n4; t0 += P) {
      const int count = t0 + P < n4 ? P : n4 - t0;
      relaxed_values_i8(acc, hi + t0, lo + t0, v8_group(m, row, t0, layer, g) + 4 * b * B, count, hd, B);
    }
    const v128_t vinv = wasm_f32x4_splat(f[b] > 0 ? 1.0f / (f[b] * esum) : 0);
    for (int i = 0; i < B; i += 4) wasm_v128_store(o + b * B + i, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_v128_load(acc + i)), vinv));
  }
}

// One group's scores against the int8 keys on relaxed SIMD: scores[j][t] =
// Σ_b s_q[j][b] · s_k[t][b] · (Σ_d (q14_j + 8192) · k_t − 8192 · Σ_d k_t), the query 14 bits per block.
static void scores_i8_relaxed(const Model *m, const Row *row, int layer, int g, int n, const float *q, float *scores) {
  const int hd = m->head_dim, G = m->n_heads / m->n_kv_heads, P = m->page_size, B = kv_block(m), nb = hd / B;
  // xq is free during attention (the matrix products quantize their input afresh): the group's
  // queries' high planes (G · hd bytes, a multiple of 16), their low planes, then their scales.
  uint8_t *hi = (uint8_t *)m->xq, *lo = hi + G * hd;
  float *qs = (float *)(lo + G * hd);
  for (int j = 0; j < G; j++) for (int b = 0; b < nb; b++) qs[j * nb + b] = quantize_q14(hi + j * hd + b * B, lo + j * hd + b * B, q + j * hd + b * B, B);
  for (int t0 = 0; t0 < n; t0 += P) {
    const int8_t *k = k8_at(m, row, t0, layer, g);
    const float *scale = kv8_scale_at(m, row, t0, layer, 0, g, 0), *sum = k8_sum_at(m, row, t0, layer, g, 0);  // block b of page position t: [b · P + t]
    const int end = t0 + P < n ? t0 + P : n, keys = (end - t0) & ~3;
    if (keys) relaxed_scores_i8(scores + t0, n, hi, qs, G, k, keys, hd, B, scale, sum, P);
    for (int t = keys; t < end - t0; t++) {
      const int8_t *kt = k + t * hd;
      for (int j = 0; j < G; j++) {
        float acc = 0;
        for (int b = 0; b < nb; b++) {
          int32_t d = 0;
          for (int i = b * B; i < (b + 1) * B; i++) d += (128 * (int32_t)hi[j * hd + i] + lo[j * hd + i] - 8192) * kt[i];
          acc += qs[j * nb + b] * scale[b * P + t] * (float)d;
        }
        scores[j * n + t0 + t] = acc;
      }
    }
  }
}

// One group's scores against the int8 keys: scores[j][t] = Σ_b (q_j / s_q) · k_t,b · s_q · s_k[t][b],
// two query heads per pass over the keys.
static void scores_i8(const Model *m, const Row *row, int layer, int g, int n, const float *q, float *scores) {
  const int hd = m->head_dim, G = m->n_heads / m->n_kv_heads, P = m->page_size, B = kv_block(m), nb = hd / B;
  // xq is free during attention (the matrix products quantize their input afresh): the group's
  // queries as int16, then their scales.
  int16_t *qi = m->xq;
  float *qs = (float *)(qi + G * hd);
  for (int j = 0; j < G; j++) qs[j] = quantize_i16(qi + j * hd, q + j * hd, hd);
  for (int t0 = 0; t0 < n; t0 += P) {
    const int8_t *k = k8_at(m, row, t0, layer, g);
    const float *scale = kv8_scale_at(m, row, t0, layer, 0, g, 0) - t0;  // block b of position t: scale[b · P + t]
    const int end = t0 + P < n ? t0 + P : n;
    int t = t0;
    for (; t + 4 <= end; t += 4, k += 4 * hd) {
      for (int j = 0; j < G; j += 2) {
        v128_t acc[2] = {wasm_f32x4_splat(0), wasm_f32x4_splat(0)}, d[2];
        for (int b = 0; b < nb; b++) {
          const v128_t sk = wasm_v128_load(scale + b * P + t);
          if (j + 1 < G) dot4_i8(d, qi + j * hd + b * B, 2, k + b * B, hd, B);
          else dot4_i8(d, qi + j * hd + b * B, 1, k + b * B, hd, B);
          for (int u = 0; u < 2 && j + u < G; u++) acc[u] = wasm_f32x4_add(acc[u], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(d[u]), sk));
        }
        for (int u = 0; u < 2 && j + u < G; u++) wasm_v128_store(scores + (j + u) * n + t, wasm_f32x4_mul(acc[u], wasm_f32x4_splat(qs[j + u])));
      }
    }
    for (; t < end; t++, k += hd) {
      for (int j = 0; j < G; j++) {
        float acc = 0;
        for (int b = 0; b < nb; b++) acc += (float)dot_i8(qi + j * hd + b * B, k + b * B, B) * scale[b * P + t];
        scores[j * n + t] = acc * qs[j];
      }
    }
  }
}

// out[r] (heads · head_dim) = softmax(q · Kᵀ) · V over positions 0..position of row r's sequence
// (causal: later positions of the same step are not yet visible to it). q is pre-scaled by 1/√hd.
// The work comes in items, one per row and KV group (item i: row i / kv_heads, group i % kv_heads);
// attend() does items [first, last), with m's scratch (two threads each have their own: threads.c).
void attend(const Model *m, int layer, const Row *rows, int first, int last, const float *qkv, float *out) {
  const int hd = m->head_dim, H = m->n_heads, KV = m->n_kv_heads, G = H / KV, P = m->page_size;
  const int width = (H + 2 * KV) * hd;
  const int relaxed_i8 = m->relaxed && hd % 16 == 0;  // then the blocks (32, or the head) are too
  for (int item = first; item < last; item++) {
    const int r = item / KV, g = item % KV;
    const int n = rows[r].position + 1;
    const float *q = qkv + r * width + g * G * hd;
    float *scores = m->scores;  // [G][n], then (int8 cache) the value weights
    if (m->kv_int8 && relaxed_i8) {
      scores_i8_relaxed(m, &rows[r], layer, g, n, q, scores);
    } else if (m->kv_int8) {
      scores_i8(m, &rows[r], layer, g, n, q, scores);
    } else {
      for (int t0 = 0; t0 < n; t0 += P) {
        const float *k = kv_at(m, &rows[r], t0, layer, 0, g);
        const int end = t0 + P < n ? t0 + P : n;
        int t = t0;
        if (m->relaxed && hd % 8 == 0) {
          const int keys = (end - t0) & ~3;
          relaxed_scores(scores + t0, n, q, G, k, keys, hd);
          t += keys, k += keys * hd;
        }
        for (; t + 4 <= end; t += 4, k += 4 * hd) {
          for (int j = 0; j < G; j++) wasm_v128_store(scores + j * n + t, dot4(q + j * hd, k, hd));
        }
        for (; t < end; t++, k += hd) {
          for (int j = 0; j < G; j++) scores[j * n + t] = dot(q + j * hd, k, hd);
        }
      }
    }
    // Sliding window (mistral): the positions before the row's last sliding_window get no weight.
    const int before = m->sliding_window && n > m->sliding_window ? n - m->sliding_window : 0;
    for (int j = 0; j < G; j++) for (int t = 0; t < before; t++) scores[j * n + t] = -__builtin_inff();
    float *o = out + r * H * hd + g * G * hd;
    if (m->kv_int8 && relaxed_i8) {  // the softmax folded into the weights
      float f[hd / kv_block(m)];
      value_factors(m, &rows[r], layer, g, n, f);
      for (int j = 0; j < G; j++) weighted_values_i8_relaxed(m, &rows[r], layer, g, n, scores + j * n, f, (uint8_t *)(scores + G * n), o + j * hd);
      continue;
    }
    for (int j = 0; j < G; j++) softmax(scores + j * n, n, 1.0f);
    if (m->kv_int8) {
      int16_t *wq = (int16_t *)(scores + G * n);  // room for 2 · (n + 4) weights (decoder.ts sizes it)
      int j = 0;
      for (; j + 2 <= G; j += 2) weighted_values_i8(m, &rows[r], layer, g, n, scores + j * n, 2, wq, o + j * hd);
      if (j < G) weighted_values_i8(m, &rows[r], layer, g, n, scores + j * n, 1, wq, o + j * hd);
    } else {
      for (int j = 0; j < G; j++) weighted_values(m, &rows[r], layer, g, n, scores + j * n, o + j * hd);
    }
  }
}
