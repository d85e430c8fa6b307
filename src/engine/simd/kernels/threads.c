// A second thread for the matrix products and attention (the threads build: build.sh --threads, a
// shared memory). The helper thread (decoder.ts starts it, helper-thread.mjs) instantiates these same
// kernels on the same memory with a stack of its own and calls helper_loop(): it waits for a job,
// takes chunks of it until none is left, and waits again. The calling thread posts a job, takes
// chunks too, then waits until every chunk is done. Chunks are taken, not assigned (as ggml's
// matrix products take theirs): a helper that wakes late, or shares its core with another busy
// thread, does less, and the calling thread the rest. Work too small to pay for a handoff runs on
// the calling thread alone, as it does in the build without threads; so does all of it until the
// helper runs.
//  - A product's chunks are runs of output rows, at multiples of 16 (the relaxed block kernels'
//    passes); both threads read the activations linear() quantized into m's scratch.
//  - Attention's chunks are runs of its (row, KV group) items (attention.c), cut at equal shares
//    of their cost (positions attended); the helper uses its own Model (decoder.ts: m's fields
//    with scratch of its own for the scores).
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

// Multiply-adds below which work runs on one thread (~10 µs of it at 25 GMAC/s): a chunk handed
// over costs well under a microsecond. At this bound the GEMVs of a SmolLM2-135M-shaped decode are
// shared (measured: 64 → 102 tok/s with 2 threads).
#define MIN_SHARED_MACS (1 << 18)
// Chunks per job, at most: enough that the thread left waiting for the other's last chunk waits
// for an eighth of the work or less.
#define MAX_CHUNKS 8
// Turns the helper spins on the job counter, within a forward pass, before it sleeps in
// memory.atomic.wait32: more than the gaps between one pass's shared work (norms, rotary) take.
// Between passes it sleeps at once: there the core is the event loop's, the client's, another
// process's (spinning there cost the shipped model's served stream a fifth of its rate).
#define SPINS 200000
// Turns the calling thread spins for the helper's last chunk before it sleeps too.
#define WAIT_SPINS 20000
// The calling thread's sleep is cut short this often (ns) to see whether the helper died.
#define WAIT_NS 1000000

enum { STOP, PRODUCT, ATTEND };
static struct {
  int32_t kind;
  int32_t bounds[MAX_CHUNKS + 1];  // chunk c: output rows, or attention items, [bounds[c], bounds[c + 1])
  const Model *m;                  // PRODUCT: y's output rows for `rows` activation rows of w
  const QMatrix *w;
  float *y;
  int32_t rows;
  int32_t layer;                   // ATTEND: items of row[] (attention.c)
  const Row *row;
  const float *qkv;
  float *out;
} job;

// JS reads and writes RUNNING and MODEL through helper_state() (decoder.ts's HELPER_* indices):
enum {
  RUNNING,   // 1 while the helper runs helper_loop; the Worker's exit handler sets 0, so that a dead
             // helper's chunks are done here instead of awaited
  POSTED,    // jobs posted
  MODEL,     // the helper's Model for attention, or 0
  IN_PASS,   // 1 while the calling thread is in forward(): the helper may spin between jobs
  TICKET,    // the job's (id & 0xFFFF) << 16 | chunks << 8 | the next chunk to take
  DONE,      // bit c: chunk c is done
  SLOTS
};
// A slot per 64-byte cache line: the helper spinning on POSTED does not pull the line that the
// other thread's takes and DONE bits write.
#define STRIDE 16
static int32_t state[SLOTS * STRIDE] __attribute__((aligned(64)));
#define SLOT(i) (&state[(i) * STRIDE])

EXPORT int32_t *helper_state(void) { return state; }

static int32_t load(int i) { return __atomic_load_n(SLOT(i), __ATOMIC_SEQ_CST); }
static void store(int i, int32_t v) { __atomic_store_n(SLOT(i), v, __ATOMIC_SEQ_CST); }

// The next chunk of job `id`, or -1 when all are taken (or the ticket is another job's): the ticket
// holds all it checks, so a thread that read a stale job takes nothing of the current one.
static int take(int32_t id) {
  for (;;) {
    int32_t t = load(TICKET);
    if ((t >> 16 & 0xFFFF) != (id & 0xFFFF) || (t & 0xFF) >= (t >> 8 & 0xFF)) return -1;
    if (__atomic_compare_exchange_n(SLOT(TICKET), &t, t + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return t & 0xFF;
  }
}

// A job's fields stay as they are while any of its chunks is not done (the next job is written
// only after), so a thread that took a chunk reads them safely. Returns the DONE bits after it.
static int32_t run_chunk(const Model *m, int c) {
  if (job.kind == PRODUCT) product(job.m, job.y, job.rows, job.w, job.bounds[c], job.bounds[c + 1]);
  else attend(m, job.layer, job.row, job.bounds[c], job.bounds[c + 1], job.qkv, job.out);
  return __atomic_or_fetch(SLOT(DONE), 1 << c, __ATOMIC_SEQ_CST);
}

EXPORT void helper_loop(void) {
  store(RUNNING, 1);
  for (int32_t seen = load(POSTED);;) {
    int32_t posted;
    for (int spin = 0; (posted = load(POSTED)) == seen;) {
      // Returns at once if a job was posted since the load above, so no wake-up is lost.
      if (!load(IN_PASS) || ++spin > SPINS) __builtin_wasm_memory_atomic_wait32(SLOT(POSTED), seen, -1);
    }
    seen = posted;
    if (job.kind == STOP) break;
    for (int c, chunks = load(TICKET) >> 8 & 0xFF; (c = take(posted)) >= 0;) {
      // The last chunk done wakes the calling thread, in case it went to sleep waiting for it.
      if (run_chunk((const Model *)load(MODEL), c) == (1 << chunks) - 1) __builtin_wasm_memory_atomic_notify(SLOT(DONE), 1);
    }
  }
  store(RUNNING, 0);
}

static int32_t post(int chunks) {
  const int32_t id = (int32_t)((uint32_t)load(POSTED) + 1);  // wraps, as the ticket's 16 bits do
  store(DONE, 0);
  store(TICKET, (id & 0xFFFF) << 16 | chunks << 8);
  store(POSTED, id);
  __builtin_wasm_memory_atomic_notify(SLOT(POSTED), 1);
  return id;
}

// Posts the job written into `job` (its kind, bounds and fields), takes chunks of it, and returns
// when all are done: by the helper, or here if it died (its unfinished ones).
static void run_shared(const Model *m, int chunks) {
  const int32_t id = post(chunks), all = (1 << chunks) - 1;
  for (int c; (c = take(id)) >= 0;) run_chunk(m, c);
  for (int spin = 0;; spin++) {
    const int32_t done = load(DONE);
    if (done == all) return;
    if (!load(RUNNING)) {
      for (int c = 0; c < chunks; c++) if (!(done >> c & 1)) run_chunk(m, c);
      return;
    }
    if (spin > WAIT_SPINS) __builtin_wasm_memory_atomic_wait32(SLOT(DONE), done, WAIT_NS);
  }
}

void threads_begin(void) { store(IN_PASS, 1); }
void threads_end(void) { store(IN_PASS, 0); }

// Ends helper_loop (the decoder's close()).
EXPORT void helper_stop(void) {
  job.kind = STOP;
  post(0);
}

void shared_product(const Model *m, float *y, int rows, const QMatrix *w) {
  const int n_out = w->n_out;
  int chunks = n_out / 16;
  if (chunks > MAX_CHUNKS) chunks = MAX_CHUNKS;
  if (!load(RUNNING) || chunks < 2 || (int64_t)rows * n_out * w->n_in < MIN_SHARED_MACS) {
    product(m, y, rows, w, 0, n_out);
    return;
  }
  job.kind = PRODUCT, job.m = m, job.y = y, job.w = w, job.rows = rows;
  for (int c = 0; c < chunks; c++) job.bounds[c] = (c * n_out / chunks) & ~15;
  job.bounds[chunks] = n_out;
  run_shared(m, chunks);
}

void shared_attend(const Model *m, int layer, const Row *rows, int n_rows, const float *qkv, float *out) {
  const int KV = m->n_kv_heads, items = n_rows * KV;
  int64_t positions = 0;  // Σ over items of the positions each attends to
  for (int r = 0; r < n_rows; r++) positions += (int64_t)(rows[r].position + 1) * KV;
  const int64_t macs = positions * (m->n_heads / KV) * m->head_dim * 2;  // scores and weighted values
  const int chunks = items < MAX_CHUNKS ? items : MAX_CHUNKS;
  if (!load(RUNNING) || !load(MODEL) || chunks < 2 || macs < MIN_SHARED_MACS) {
    attend(m, layer, rows, 0, items, qkv, out);
    return;
  }
  job.kind = ATTEND, job.layer = layer, job.row = rows, job.qkv = qkv, job.out = out;
  // Chunk c starts at the first item past c / chunks of the cost, and holds one item at least.
  int item = 0;
  int64_t before = 0;  // the cost of the items before `item`
  for (int c = 0; c < chunks; c++) {
    while (item < items - (chunks - c) && before * chunks < positions * c) before += rows[item++ / KV].position + 1;
    job.bounds[c] = item;
    before += rows[item++ / KV].position + 1;
  }
  job.bounds[chunks] = items;
  run_shared(m, chunks);
}

#endif
