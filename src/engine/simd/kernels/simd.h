// Shared declarations of the decoder kernels (C, WebAssembly SIMD128, no libc).
// Every buffer is addressed by a 32-bit pointer into the one linear memory that JS also sees.
#pragma once
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT __attribute__((visibility("default")))

// A quantized weight matrix: n_out rows of n_in values (row-major, one row per output). `kind`:
//  Q7_ROW: 7-bit weights stored with an offset of 64 (0..127: relaxed SIMD's dot product takes its
//    second operand unsigned, 7-bit), one f32 scale per row: W[o][k] ≈ (w[o·n_in + k] − 64) · scale[o].
//    The offset is taken out once per row: Σ x·(w − 64) = Σ x·w' − 64·Σ x. n_in % 8 == 0.
//  Q8_ROW: 8-bit signed weights (±127), one f32 scale per row: W[o][k] ≈ (int8)w[o·n_in + k] · scale[o].
//  Q8_B32: 8-bit signed weights, one f32 scale per 32 consecutive values of a row (GGUF Q8_0's blocks).
//  Q4_B32: 4-bit weights, 32-value blocks of 16 bytes with one f32 scale (GGUF Q4_0's blocks): byte j
//    of a block holds value j in its low nibble and value j + 16 in its high nibble, each stored + 8:
//    W[o][32b + j] ≈ (nibble − 8) · scale.
// The block kinds interleave the 4 rows of a group by 4 bytes within each block (B bytes a row: 32
// for Q8_B32, 16 for Q4_B32): the group's block b is 4B bytes, byte j of row o at
// ((o / 4) · (n_in / 32) + b) · 4B + (j / 4) · 16 + (o % 4) · 4 + j % 4, so that one 16-byte vector
// holds 4 values of each of the 4 rows (lanes = rows: no transposing of sums).
// Block scales are interleaved by 4 rows, so one vector load gives 4 rows' scales of a block:
// scale[((o / 4) · (n_in / 32) + b) · 4 + o % 4]; block kinds need n_in % 32 == 0 and n_out % 4 == 0.
enum { Q7_ROW = 0, Q8_ROW = 1, Q8_B32 = 2, Q4_B32 = 3 };
typedef struct {
  const uint8_t *w;
  const float *scale;
  int32_t n_out, n_in, kind;
} QMatrix;

typedef struct {
  const float *attn_norm;    // [dim]
  QMatrix qkv;               // [(heads + 2·kv_heads)·head_dim, dim]: q (pre-scaled by 1/√head_dim unless q_norm), k, v
  const float *qkv_bias;     // [(heads + 2·kv_heads)·head_dim], q part pre-scaled as its rows (qwen2), or 0
  const float *q_norm;       // [head_dim] per-head RMSNorm of q before rotary (qwen3), carrying 1/√head_dim, or 0
  const float *k_norm;       // [head_dim] the same for k, or 0
  QMatrix o;                 // [dim, heads·head_dim]
  const float *ffn_norm;     // [dim]
  QMatrix gate_up;           // [2·ffn, dim]: gate rows, then up rows
  QMatrix down;              // [dim, ffn]
} Layer;

// The model and its scratch space; JS writes this struct (every field 4 bytes, in this order).
typedef struct {
  int32_t dim, n_layers, n_heads, n_kv_heads, head_dim, ffn, vocab, max_rows, page_size;
  float eps;
  QMatrix embedding;         // [vocab, dim]: the token lookup
  QMatrix lm_head;           // [vocab, dim]: the LM head (the embedding's fields again when tied)
  const float *final_norm;   // [dim]
  const float *rope_cos;     // [max_positions, head_dim / 2]
  const float *rope_sin;
  const Layer *layers;       // [n_layers]
  // Scratch, each sized for max_rows rows.
  float *x, *h, *qkv, *att, *gu;
  float *scores;             // [heads / kv_heads][max_positions + 4] f32: a group's scores, then the int8 cache's value weights (decoder.ts)
  int16_t *xq;               // activations quantized to int16 (or int8), [max_rows, max(dim, ffn, heads·head_dim)]
  float *xq_scale;           // [max_rows]
  int32_t relaxed;           // 1: matrix products through relaxed.wasm's gemm (imported), when the shapes allow
  int32_t *xq_sum;           // [max_rows]: Σ of each quantized row, for the weights' offset
  int32_t sliding_window;    // a row attends to its last sliding_window positions (mistral), or 0: all
  int32_t *xq_boffset;       // [max_rows, max(dim, ffn, heads·head_dim) / 32]: 8 · Σ per 32-value block (Q4_B32's offset)
  int32_t kv_int8;           // 1: KV pages hold int8 keys and values with a scale per position and head (attention.c)
} Model;

// One row (token) of a forward pass: its position, and its sequence's KV pages (page_size positions
// each; layout in attention.c).
typedef struct {
  int32_t token, position;
  float *const *pages;
} Row;

// matmul.c
void linear(const Model *m, float *y, const float *x, int rows, const QMatrix *w);
void product(const Model *m, float *y, int rows, const QMatrix *w, int begin, int end);
// threads.c
void threads_begin(void);
void threads_end(void);
void shared_product(const Model *m, float *y, int rows, const QMatrix *w);
void dequantize_row(float *y, const QMatrix *w, int row);
// ops.c
float absmax(const float *x, int n);
v128_t exp_f32x4(v128_t x);
float exp_f32(float x);
void rmsnorm(float *y, const float *x, const float *weight, int rows, int dim, float eps);
void rope(float *v, int heads, int head_dim, const float *cos, const float *sin);
void swiglu(float *act, const float *gate_up, int rows, int ffn);
void add_rows(float *x, const float *y, int n);
void add_bias(float *x, const float *bias, int rows, int n);
void softmax(float *v, int n, float inv_temperature);
// attention.c
void kv_store(const Model *m, int layer, const Row *rows, int n_rows, const float *qkv);
void attend(const Model *m, int layer, const Row *rows, int first, int last, const float *qkv, float *out);
// threads.c
void shared_attend(const Model *m, int layer, const Row *rows, int n_rows, const float *qkv, float *out);
