"""The PyTorch reference (model.py) on a Hugging Face folder as the server reads it — config.json and
model.safetensors or the shards model.safetensors.index.json names, F32 / F16 / BF16 — in fp32: the
logits at every position of one token sequence, for parity tests (test/compress.test.ts).

    echo '[1, 2, 3]' | /usr/bin/python3 -m scripts.tinylm.hf_logits FOLDER > logits.f32

Writes [len(ids), vocab_size] little-endian f32 to stdout.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch

from .checkpoints import ArchConfig, load

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    data = raw[8 + n:]
    tensors = {}
    for name, e in json.loads(raw[8:8 + n]).items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        a = np.frombuffer(data[begin:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        # bf16 is the top half of an f32: widen it bit for bit.
        t = torch.from_numpy((a.astype(np.uint32) << 16).view(np.float32)) if e["dtype"] == "BF16" else torch.from_numpy(a.astype(np.float32))
        tensors[name] = t
    return tensors


def load_folder(folder: Path):
    c = json.loads((folder / "config.json").read_text())
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    state = {k: v for f in files for k, v in read_safetensors(folder / f).items()}
    cfg = ArchConfig(
        vocab_size=c["vocab_size"], d_model=c["hidden_size"], n_layers=c["num_hidden_layers"], n_heads=c["num_attention_heads"],
        n_kv_heads=c.get("num_key_value_heads", c["num_attention_heads"]), ffn_hidden=c["intermediate_size"],
        max_seq_len=c["max_position_embeddings"], rope_theta=float(c.get("rope_theta", 10000.0)), norm_eps=float(c.get("rms_norm_eps", 1e-6)),
        head_dim_override=c.get("head_dim", 0), qkv_bias=c["model_type"] == "qwen2", qk_norm=c["model_type"] == "qwen3",
        sliding_window=c.get("sliding_window") if c["model_type"] == "mistral" else None, rope_scaling=c.get("rope_scaling"),
        tied=c.get("tie_word_embeddings", False),
    )
    if cfg.tied:
        state.pop("lm_head.weight", None)
    return load(cfg, state)


@torch.no_grad()
def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="a Hugging Face folder (token ids as a JSON list on stdin)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ids = json.loads(sys.stdin.read())
    logits = load_folder(Path(args.folder))(torch.tensor([ids]))[0][0]
    sys.stdout.buffer.write(logits.float().numpy().astype("<f4").tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
