// A second thread for the matrix products and attention (the threads build: build.sh --threads, a
// shared memory). The helper thread (decoder.ts starts it, helper-thread.mjs) instantiates these same
// kernels on the same memory with a stack of its own and calls helper_loop(): it waits for a job,
// does its share, says so, and waits again. The calling thread posts a job, does the other share,
// then spins until the helper's is done. Work too small to pay for the handoff runs on the calling
// thread alone, as it does in the build without threads; so does all of it until the helper runs.
//  - A product's output rows split at half, rounded to 16 (the relaxed block kernels' passes): both
//    threads read the activations linear() quantized into m's scratch.
//  - Attention's (row, KV group) items (attention.c) split at half their cost (positions attended);
//    the helper uses its own Model (decoder.ts: m's fields with scratch of its own for scores).
#include "simd.h"

#ifndef TINYLM_THREADS

void threads_begin(void) {}
void threads_end(void) {}

void shared_product(const Model *m, float *y, int rows, const QMatrix *w) {
  product(m, y, rows, w, 0, w->n_out);
}

void shared_attend(const Model *m, int layer, const Row *rows, int n_rows, const float *qkv, float *out) {
  attend(m, layer, rows, 0, n_rows * m->n_kv_heads, qkv, out);
}

#else

// Multiply-adds below which work runs on one thread (~10 µs of it at 25 GMAC/s): a handoff to a
// spinning helper costs well under a microsecond, one that must be woken tens. At this bound the
// GEMVs of a SmolLM2-135M-shaped decode are shared (measured: 64 → 102 tok/s with 2 threads).
#define MIN_SHARED_MACS (1 << 18)
// Turns the helper spins on a job counter, within a forward pass, before it sleeps in
// memory.atomic.wait32: more than the gaps between one pass's shared work (norms, rotary) take.
// Between passes it sleeps at once: there the core is the event loop's, the client's, another
// process's (spinning there cost the shipped model's served stream a fifth of its rate).
#define SPINS 200000

enum { STOP, PRODUCT, ATTEND };
static struct {
  int32_t kind;
  const Model *m;
  const QMatrix *w;  // PRODUCT: y's output rows [begin, end) for `rows` activation rows
  float *y;
  int32_t rows, begin, end;
  int32_t layer;     // ATTEND: items [begin, end) of rows[]
  const Row *row;
  const float *qkv;
  float *out;
} job;
// JS reads and writes these through helper_state(): [0] 1 while the helper runs helper_loop (the
// Worker's exit handler sets 0, so that a dead helper's share is done here instead of awaited),
// [1] jobs posted, [2] jobs finished, [3] the helper's Model for attention (decoder.ts), or 0,
// [4] 1 while the calling thread is in forward().
static int32_t state[5];

EXPORT int32_t *helper_state(void) { return state; }

static int32_t load(int i) { return __atomic_load_n(&state[i], __ATOMIC_SEQ_CST); }

static void run_job(void) {
  if (job.kind == PRODUCT) product(job.m, job.y, job.rows, job.w, job.begin, job.end);
  else attend((const Model *)load(3), job.layer, job.row, job.begin, job.end, job.qkv, job.out);
}

EXPORT void helper_loop(void) {
  __atomic_store_n(&state[0], 1, __ATOMIC_SEQ_CST);
  for (int32_t seen = load(1);;) {
    int32_t posted;
    for (int spin = 0; (posted = load(1)) == seen;) {
      // Returns at once if a job was posted since the load above, so no wake-up is lost.
      if (!load(4) || ++spin > SPINS) __builtin_wasm_memory_atomic_wait32(&state[1], seen, -1);
    }
    seen = posted;
    if (job.kind == STOP) break;
    run_job();
    __atomic_store_n(&state[2], posted, __ATOMIC_SEQ_CST);
  }
  __atomic_store_n(&state[0], 0, __ATOMIC_SEQ_CST);
}

static int32_t post(void) {
  const int32_t id = __atomic_add_fetch(&state[1], 1, __ATOMIC_SEQ_CST);
  __builtin_wasm_memory_atomic_notify(&state[1], 1);
  return id;
}

// forward() is running: the helper may spin between jobs.
void threads_begin(void) { __atomic_store_n(&state[4], 1, __ATOMIC_SEQ_CST); }
void threads_end(void) { __atomic_store_n(&state[4], 0, __ATOMIC_SEQ_CST); }

// Ends helper_loop (the decoder's close()).
EXPORT void helper_stop(void) {
  job.kind = STOP;
  post();
}

// Waits for job `id`; 0 when the helper died instead (its share is then still to do).
static int finished(int32_t id) {
  while (load(2) != id) {
    if (!load(0)) return 0;
  }
  return 1;
}

void shared_product(const Model *m, float *y, int rows, const QMatrix *w) {
  const int n_out = w->n_out, split = (n_out / 2) & ~15;
  if (!load(0) || split == 0 || (int64_t)rows * n_out * w->n_in < MIN_SHARED_MACS) {
    product(m, y, rows, w, 0, n_out);
    return;
  }
  job.kind = PRODUCT, job.m = m, job.y = y, job.w = w, job.rows = rows, job.begin = split, job.end = n_out;
  const int32_t id = post();
  product(m, y, rows, w, 0, split);
  if (!finished(id)) product(m, y, rows, w, split, n_out);
}

void shared_attend(const Model *m, int layer, const Row *rows, int n_rows, const float *qkv, float *out) {
  const int KV = m->n_kv_heads, items = n_rows * KV;
  int64_t positions = 0;  // Σ over items of the positions each attends to
  for (int r = 0; r < n_rows; r++) positions += (int64_t)(rows[r].position + 1) * KV;
  const int64_t macs = positions * (m->n_heads / KV) * m->head_dim * 2;  // scores and weighted values
  if (!load(0) || !load(3) || items < 2 || macs < MIN_SHARED_MACS) {
    attend(m, layer, rows, 0, items, qkv, out);
    return;
  }
  int split = 0;
  for (int64_t done = 0; split < items - 1 && 2 * done < positions; split++) done += rows[split / KV].position + 1;
  job.kind = ATTEND, job.layer = layer, job.row = rows, job.begin = split, job.end = items, job.qkv = qkv, job.out = out;
  const int32_t id = post();
  attend(m, layer, rows, 0, split, qkv, out);
  if (!finished(id)) attend(m, layer, rows, split, items, qkv, out);
}

#endif
