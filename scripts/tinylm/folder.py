"""What every model folder holds, shared by export.py (which writes a folder) and interop.py (which
re-lays one): its README (the two contracts), how each graph is quantized, and file hashes."""
from __future__ import annotations

import hashlib
from pathlib import Path

TINYLM_SUFFIX = ".tinylm.onnx"  # our server's contract, beside the standard graph of the same name

FOLDER_README = """# Model folder

Written by `npm run export` (`scripts/tinylm/export.py`); laid out the way Hugging Face / Optimum /
transformers.js expect, so other tools run it too: transformers.js loads it with
`AutoModelForCausalLM.from_pretrained(folder)` (`config.json` names `q8`, the int8 graph, as the
default dtype) and `pipeline("text-generation", folder)` generates from it.

| file | what |
|---|---|
| `config.json` | Llama-compatible architecture (`model_type: "llama"`, hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, intermediate_size, vocab_size, rope_theta, rms_norm_eps, max_position_embeddings, tie_word_embeddings, bos/eos ids) and `transformers.js_config` |
| `generation_config.json` | default sampling settings |
| `tokenizer.json`, `tokenizer_config.json` | the compact byte-level BPE (cl100k subset) and the chat template |
| `vocab_map.json` | compact id → cl100k id (for inheriting embedding rows) |
| `onnx/model.onnx` | fp32 graph, standard contract (for the parity check; left out of a folder exported with `--drop-fp32`, as the shipped `model/`) |
| `onnx/model_quantized.onnx` | int8 graph, standard contract (transformers.js `dtype: "q8"`; our WASM SIMD kernels read its weights) |
| `onnx/model.tinylm.onnx`, `onnx/model_quantized.tinylm.onnx` | the same graphs in our server's contract (below), for onnxruntime-web; no weights of their own: their initializers are external data pointing into the standard graph beside them |
| `parity/` | PyTorch reference logits used by the parity check (`npm run parity -- <folder>`) |
| `manifest.json` | architecture, parameter counts, quantization, training data and tokens, eval and parity results, sha256 of every file the export wrote |

## The standard contract (`onnx/model.onnx`, `onnx/model_quantized.onnx`)

Optimum's decoder layout, which transformers.js runs: inputs `input_ids`, `attention_mask`,
`position_ids` (int64) and `past_key_values.{i}.key/value` (float32 [batch, num_key_value_heads,
past, head_dim]); outputs `logits` [batch, seq, vocab_size] and `present.{i}.key/value` (past and new
positions together). Every run copies the whole cache in and out of WASM memory, and a prefill
computes logits for every prompt position: on onnxruntime-web our own contract is faster
(`BENCHMARKS.md`), so the server runs the `.tinylm.onnx` graph when the folder has one.

## Our contract (`onnx/*.tinylm.onnx`)

Inputs:
- `input_ids` int64 [batch, seq]
- `attention_mask` int64 [batch, past + seq] — 1 for real tokens, 0 for padding (anywhere: the
  server left-aligns each cache in the past and right-aligns the new tokens)
- `position_ids` int64 [batch, seq] — positions of the new tokens (count of real tokens before them)
- `past_key_values.{i}.key`, `past_key_values.{i}.value` float32 [batch, num_key_value_heads, past, head_dim], for each layer i
- `logits_to_keep` int64 [1] — how many of the last positions get logits (1 when sampling; seq for
  per-token scores)
- `temperature` float32 [batch] — per row, for `probs` (pass 1 for plain softmax probabilities)

Outputs:
- `logits` float32 [batch, logits_to_keep, vocab_size]
- `probs` float32 [batch, logits_to_keep, vocab_size] — softmax(logits / temperature), so sampling
  needs no exp per vocabulary entry in JS
- `new_kv` float32 [batch, 2 × num_hidden_layers × num_key_value_heads, seq, head_dim] — keys and
  values of the new positions only, in one tensor: for layer i, rows [2i·kv, (2i+1)·kv) are its key
  heads and the next kv rows its value heads; append them to the cache

One graph serves prefill (past = 0) and decode, and batches of several sequences of different
lengths (padded positions are masked out of attention; positions come from `position_ids`). Rotary
embeddings follow Hugging Face's rotate-half layout. The inputs follow Optimum's naming; the outputs
do not, on purpose: onnxruntime-web copies every output from WASM to JS memory on every run, so only
the new positions come back (Optimum's `present.{i}` would return the whole cache, growing with the
context), and attention scores the past and new keys separately so the cache is not concatenated
inside the graph. The softmax for sampling is part of the graph too (`probs`).

The graph is written directly with onnx.helper (`scripts/tinylm/onnx_graph.py`): ~30 nodes per layer
(`SimplifiedLayerNormalization`, `com.microsoft.RotaryEmbedding`, one MatMul for q/k/v and one for
gate/up, MatMul-based grouped-query attention with a causal + padding bias built once), instead of
the ~1,900 shape-bookkeeping nodes torch.onnx.export traces for an 8-layer model; onnxruntime-web
pays per node on every decode step.

## Quantization

`model_quantized.onnx` replaces every MatMul with a constant weight by `com.microsoft.DynamicQuantizeMatMul`
(activations quantized per run, weights int8 with one scale per output column). Weights use 7 bits
(±63): native onnxruntime on AVX2 machines without VNNI saturates u8×s8 sums for full-range int8 weights,
while 7-bit weights give the same results on onnxruntime-web (wasm) and onnxruntime-node. The tied
embedding is stored once, as the LM head's int8 weight; the token lookup gathers its transpose and
rescales. The LM head multiplies in fp32 on the same int8 storage: `Cast(int8) * scale`, which ONNX
Runtime folds once at session start (DynamicQuantizeMatMul over a single row and the whole vocabulary
is slow on wasm). Measured alternatives are in `BENCHMARKS.md`.
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Written after the export, by hand and by scripts/loss-curve.ts: they change without a re-export.
LATER_FILES = ("MODEL_CARD.md", "loss-curve.svg")


def file_hashes(folder: Path) -> dict[str, dict]:
    """manifest.json's "files": size and sha256 of every file the folder holds now, but the manifest
    itself and LATER_FILES."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": sha256(p)} for p in files
            if str(p.relative_to(folder)) not in ("manifest.json", *LATER_FILES)}


INT8_NOTE = ("int8 weights (7-bit symmetric, per output column), DynamicQuantizeMatMul; tied int8 embedding; "
             "LM head dequantized to fp32 at session start")


def quantization_notes(folder: Path, notes: dict) -> dict:
    out = dict(notes)
    out["onnx/model_quantized.onnx"] = INT8_NOTE + "; standard contract (transformers.js dtype q8)"
    out["onnx/model_quantized" + TINYLM_SUFFIX] = "the same graph in tinylm's server contract; weights read from model_quantized.onnx"
    if (folder / "onnx" / "model.onnx").exists():
        out["onnx/model.onnx"] = "fp32; standard contract (transformers.js dtype fp32)"
        out["onnx/model" + TINYLM_SUFFIX] = "the same graph in tinylm's server contract; weights read from model.onnx"
    return out
