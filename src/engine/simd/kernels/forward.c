// The Llama-family decoder's forward pass over a batch of rows (tokens of one or several sequences):
// embedding lookup from the int8 table, then per layer RMSNorm → qkv (+ bias: qwen2) → per-head
// q/k RMSNorm (qwen3) → rotary → KV store → attention (within the sliding window: mistral) → o →
// residual, RMSNorm → gate_up → SwiGLU → down → residual; then, for the rows that want them, final
// RMSNorm → LM head (tied or not) → logits, and softmax at each row's temperature → probs.
#include "simd.h"

// Per-stage timing for the bench (build.sh --profile): each stage's milliseconds are added to
// profile_ms[stage], read through the exported profile_slots(); `now` is imported (performance.now).
enum { EMBED, NORM, QKV, ROPE_KV, ATTENTION, OUT_PROJ, FFN_MATMULS, SWIGLU_RESIDUAL, LM_HEAD, SAMPLING_SOFTMAX, STAGES };
#ifdef TINYLM_PROFILE
double now(void);
static double profile_ms[STAGES];
EXPORT double *profile_slots(void) { return profile_ms; }
#define TIMED(stage, ...) do { double t0_ = now(); __VA_ARGS__; profile_ms[stage] += now() - t0_; } while (0)
#else
#define TIMED(stage, ...) __VA_ARGS__
#endif

// rows: n_rows ≤ max_rows. head_rows: indices of the rows whose logits are wanted (n_head of them),
// inv_temperature[n_head]; logits and probs: [n_head][vocab].
EXPORT void forward(const Model *m, const Row *rows, int n_rows, const int32_t *head_rows, int n_head,
                    const float *inv_temperature, float *logits, float *probs) {
  const int dim = m->dim, hd = m->head_dim, H = m->n_heads, KV = m->n_kv_heads;
  const int width = (H + 2 * KV) * hd, half = hd / 2;
  float *x = m->x, *h = m->h;
  threads_begin();

  TIMED(EMBED, for (int r = 0; r < n_rows; r++) dequantize_row(x + r * dim, &m->embedding, rows[r].token));
  for (int l = 0; l < m->n_layers; l++) {
    const Layer *L = &m->layers[l];
    TIMED(NORM, rmsnorm(h, x, L->attn_norm, n_rows, dim, m->eps));
    TIMED(QKV, linear(m, m->qkv, h, n_rows, &L->qkv));
    TIMED(ROPE_KV, {
      if (L->qkv_bias) add_bias(m->qkv, L->qkv_bias, n_rows, width);
      for (int r = 0; L->q_norm && r < n_rows; r++) {
        rmsnorm(m->qkv + r * width, m->qkv + r * width, L->q_norm, H, hd, m->eps);  // in place, per head
        rmsnorm(m->qkv + r * width + H * hd, m->qkv + r * width + H * hd, L->k_norm, KV, hd, m->eps);
      }
      for (int r = 0; r < n_rows; r++) {
        const float *c = m->rope_cos + rows[r].position * half, *s = m->rope_sin + rows[r].position * half;
        rope(m->qkv + r * width, H + KV, hd, c, s);  // q heads then k heads are contiguous
      }
      kv_store(m, l, rows, n_rows, m->qkv);
    });
    TIMED(ATTENTION, shared_attend(m, l, rows, n_rows, m->qkv, m->att));
    TIMED(OUT_PROJ, linear(m, h, m->att, n_rows, &L->o));
    TIMED(SWIGLU_RESIDUAL, add_rows(x, h, n_rows * dim));
    TIMED(NORM, rmsnorm(h, x, L->ffn_norm, n_rows, dim, m->eps));
    TIMED(FFN_MATMULS, linear(m, m->gu, h, n_rows, &L->gate_up));
    TIMED(SWIGLU_RESIDUAL, swiglu(m->att, m->gu, n_rows, m->ffn));  // att is free again: max(heads·hd, ffn) per row
    TIMED(FFN_MATMULS, linear(m, h, m->att, n_rows, &L->down));
    TIMED(SWIGLU_RESIDUAL, add_rows(x, h, n_rows * dim));
  }
  TIMED(LM_HEAD, {
    for (int i = 0; i < n_head; i++) {
      const float *xr = x + head_rows[i] * dim;
      for (int k = 0; k < dim; k++) m->att[i * dim + k] = xr[k];  // gather the wanted rows (i ≤ head_rows[i])
    }
    rmsnorm(h, m->att, m->final_norm, n_head, dim, m->eps);
    linear(m, logits, h, n_head, &m->lm_head);
  });
  TIMED(SAMPLING_SOFTMAX, for (int i = 0; i < n_head; i++) {
    float *p = probs + i * m->vocab, *l = logits + i * m->vocab;
    for (int k = 0; k < m->vocab; k++) p[k] = l[k];
    softmax(p, m->vocab, inv_temperature[i]);
  });
  threads_end();
}

// Sizes of the structs JS writes (decoder.ts checks them against its own field lists at load).
EXPORT int32_t struct_bytes(int which) {
  return which == 0 ? (int32_t)sizeof(Model) : which == 1 ? (int32_t)sizeof(Layer) : (int32_t)sizeof(QMatrix);
}
