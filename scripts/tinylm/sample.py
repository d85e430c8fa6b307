"""Prompt → continuation from a checkpoint, for eyeballing (tokenization through the TypeScript tokenizer).

    /usr/bin/python3 -m scripts.tinylm.sample runs/shipped-cpu/final.pt build/tokenizer-8k "Once upon a time" \
        [--tokens 100] [--temperature 0.8] [--top-p 0.95] [--seed 1] [--n 1]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def codec(mode: str, tokenizer_dir: str, payload: str) -> str:
    tsx = ROOT / "node_modules" / ".bin" / "tsx"
    r = subprocess.run([str(tsx), str(ROOT / "scripts" / "tokenizer" / "codec.ts"), mode, tokenizer_dir],
                       input=payload, capture_output=True, text=True)
    if r.returncode != 0:
        raise CheckpointError(r.stderr.strip() or f"tokenizer {mode} failed")
    return r.stdout


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("tokenizer_dir")
    ap.add_argument("prompt")
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        model = model_from_checkpoint(load_checkpoint(args.checkpoint), args.checkpoint).eval()
        tok = json.loads((Path(args.tokenizer_dir) / "tokenizer.json").read_text())
        eos = next(a["id"] for a in tok.get("added_tokens", []) if a["content"] == "<|endoftext|>")
        ids = json.loads(codec("encode", args.tokenizer_dir, args.prompt))
        g = torch.Generator().manual_seed(args.seed)
        for i in range(args.n):
            out = model.generate(ids, args.tokens, args.temperature, args.top_p, eos_id=eos, generator=g)
            print(f"--- sample {i + 1}\n{args.prompt}{codec('decode', args.tokenizer_dir, json.dumps(out))}")
    except (CheckpointError, OSError, StopIteration) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from .cpu import tune_malloc

    tune_malloc()  # before torch allocates: see cpu.py
    sys.exit(main(sys.argv[1:]))
