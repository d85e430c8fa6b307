// Grouped-query attention over a paged KV cache, in f32.
// A sequence's cache is a list of pages of page_size positions; a page holds every layer:
// [layer][key | value][kv_head][page_size][head_dim]. The query heads of a group (h = g·G + j)
// share KV head g, so each key and value vector is loaded once for the G query heads.
#include "simd.h"

static inline float *kv_at(const Model *m, const Row *row, int pos, int layer, int value, int kv_head) {
  const int P = m->page_size;
  float *page = row->pages[pos / P];
  return page + ((((layer * 2 + value) * m->n_kv_heads + kv_head) * P) + pos % P) * m->head_dim;
}

// Copy each row's new key and value (qkv row: q heads, k heads, v heads) into its page.
void kv_store(const Model *m, int layer, const Row *rows, int n_rows, const float *qkv) {
  const int hd = m->head_dim, KV = m->n_kv_heads, width = (m->n_heads + 2 * KV) * hd;
  for (int r = 0; r < n_rows; r++) {
    const float *k = qkv + r * width + m->n_heads * hd, *v = k + KV * hd;
    for (int g = 0; g < KV; g++) {
      float *kd = kv_at(m, &rows[r], rows[r].position, layer, 0, g);
      float *vd = kv_at(m, &rows[r], rows[r].position, layer, 1, g);
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
  // Transpose-and-add: [s0₀+s0₂, s0₁+s0₃, s1₀+s1₂, s1₁+s1₃], the same for s2, s3, then pairwise.
  v128_t a = wasm_f32x4_add(wasm_i32x4_shuffle(s0, s1, 0, 1, 4, 5), wasm_i32x4_shuffle(s0, s1, 2, 3, 6, 7));
  v128_t b = wasm_f32x4_add(wasm_i32x4_shuffle(s2, s3, 0, 1, 4, 5), wasm_i32x4_shuffle(s2, s3, 2, 3, 6, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 2, 4, 6), wasm_i32x4_shuffle(a, b, 1, 3, 5, 7));
}

// o = Σ_t p[t] · v_t for one query head, 16 dimensions at a time so that the 4 accumulators stay
// in registers while the positions stream past (the G heads of a group each pass over V; one KV
// head's values are ≤ 128 KB at 512 positions, so the passes after the first read from cache).
static void weighted_values(const Model *m, const Row *row, int layer, int g, int n, const float *p, float *o) {
  const int hd = m->head_dim, P = m->page_size;
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

// out[r] (heads · head_dim) = softmax(q · Kᵀ) · V over positions 0..position of row r's sequence
// (causal: later positions of the same step are not yet visible to it). q is pre-scaled by 1/√hd.
void attend(const Model *m, int layer, const Row *rows, int n_rows, const float *qkv, float *out) {
  const int hd = m->head_dim, H = m->n_heads, KV = m->n_kv_heads, G = H / KV, P = m->page_size;
  const int width = (H + 2 * KV) * hd;
  for (int r = 0; r < n_rows; r++) {
    const int n = rows[r].position + 1;
    for (int g = 0; g < KV; g++) {
      const float *q = qkv + r * width + g * G * hd;
      float *scores = m->scores;  // [G][n]
      for (int t0 = 0; t0 < n; t0 += P) {
        const float *k = kv_at(m, &rows[r], t0, layer, 0, g);
        const int end = t0 + P < n ? t0 + P : n;
        int t = t0;
        for (; t + 4 <= end; t += 4, k += 4 * hd) {
          for (int j = 0; j < G; j++) wasm_v128_store(scores + j * n + t, dot4(q + j * hd, k, hd));
        }
        for (; t < end; t++, k += hd) {
          for (int j = 0; j < G; j++) scores[j * n + t] = dot(q + j * hd, k, hd);
        }
      }
      // Sliding window (mistral): the positions before the row's last sliding_window get no weight.
      const int before = m->sliding_window && n > m->sliding_window ? n - m->sliding_window : 0;
      for (int j = 0; j < G; j++) for (int t = 0; t < before; t++) scores[j * n + t] = -__builtin_inff();
      for (int j = 0; j < G; j++) softmax(scores + j * n, n, 1.0f);
      for (int j = 0; j < G; j++) weighted_values(m, &rows[r], layer, g, n, scores + j * n, out + r * H * hd + (g * G + j) * hd);
    }
  }
}
