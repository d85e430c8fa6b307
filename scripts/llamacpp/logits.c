// llama.cpp's logits for given token ids, through its public C API (llama.h), for the record script
// beside this file: it compiles this against a llama.cpp build the user names (it never builds
// llama.cpp itself). No text and no tokenizer: the ids are fed as they are.
//
//   logits MODEL.gguf N ID_1 … ID_N   → stdout: N rows of n_vocab little-endian f32 logits, one per
//                                        position (position i: the logits after ids 1..i+1), the
//                                        whole sequence decoded as one batch in a fresh context.
#include <stdio.h>
#include <stdlib.h>
#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *data) {
  (void)data;
  if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL.gguf N ID_1 ... ID_N\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[2]);
  if (n < 1 || argc != 3 + n) {
    fprintf(stderr, "expected %d token ids after N\n", n);
    return 2;
  }
  llama_log_set(quiet, NULL);
  llama_backend_init();
  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  struct llama_model *model = llama_model_load_from_file(argv[1], mp);
  if (!model) {
    fprintf(stderr, "%s: llama.cpp could not load it\n", argv[1]);
    return 1;
  }
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = n < 64 ? 64 : n;
  cp.n_batch = cp.n_ctx;
  cp.n_ubatch = cp.n_ctx;
  cp.n_threads = cp.n_threads_batch = 1;
  struct llama_context *ctx = llama_init_from_model(model, cp);
  if (!ctx) {
    fprintf(stderr, "%s: no context\n", argv[1]);
    return 1;
  }
  int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  struct llama_batch batch = llama_batch_init(n, 0, 1);
  for (int i = 0; i < n; i++) {
    int id = atoi(argv[3 + i]);
    if (id < 0 || id >= vocab) {
      fprintf(stderr, "token id %d outside the vocabulary (%d)\n", id, vocab);
      return 2;
    }
    batch.token[i] = id;
    batch.pos[i] = i;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = n;
  if (llama_decode(ctx, batch) != 0) {
    fprintf(stderr, "llama_decode failed\n");
    return 1;
  }
  for (int i = 0; i < n; i++) fwrite(llama_get_logits_ith(ctx, i), sizeof(float), vocab, stdout);
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
