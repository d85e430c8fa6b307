"""A model folder with random weights at a given shape, for benchmarks: our exporter's graphs (fp32 and
int8, both contracts) and config.json, nothing else. Speed depends on shape and quantization only, so
onnxruntime-web and our kernels can be measured on the same int8 weights at real sizes without a
trained checkpoint (bench/ort-shapes.ts).

    /usr/bin/python3 -m scripts.tinylm.shape_folder OUT_DIR --layers 30 --dim 576 --heads 9 --kv-heads 3 \
        --ffn 1536 --vocab 49152 [--rope-theta 100000] [--max-len 1024] [--seed 0]

The fp32 graph is removed once the int8 one is written (the benchmark runs int8 only).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import onnx
import torch

from .config import ModelConfig
from .export import quantize_file
from .interop import split_contracts
from .model import TinyLM
from .onnx_graph import build_graph


def write_folder(out: Path, cfg: ModelConfig, seed: int) -> None:
    torch.manual_seed(seed)
    model = TinyLM(cfg).eval()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "onnx").mkdir(parents=True)
    fp32, int8 = tmp / "onnx" / "model.onnx", tmp / "onnx" / "model_quantized.onnx"
    onnx.save(build_graph(model), str(fp32))
    del model
    quantize_file(fp32, int8, "embed_tokens.weight", "lm_head.weight.T")
    fp32.unlink()
    split_contracts(int8)
    (tmp / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": cfg.d_model,
        "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim, "intermediate_size": cfg.ffn_hidden, "vocab_size": cfg.vocab_size,
        "rope_theta": cfg.rope_theta, "rms_norm_eps": cfg.norm_eps, "max_position_embeddings": cfg.max_seq_len,
        "tie_word_embeddings": True, "hidden_act": "silu", "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float32",
    }, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    for name in ("layers", "dim", "heads", "kv-heads", "ffn", "vocab"):
        ap.add_argument(f"--{name}", type=int, required=True)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--max-len", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    cfg = ModelConfig(vocab_size=a.vocab, d_model=a.dim, n_layers=a.layers, n_heads=a.heads, n_kv_heads=a.kv_heads,
                      ffn_hidden=a.ffn, max_seq_len=a.max_len, rope_theta=a.rope_theta)
    write_folder(Path(a.out_dir), cfg, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
