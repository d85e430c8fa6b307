"""Evaluation: validation loss, bits per byte (comparable across vocabularies), and zero-shot accuracy
on LAMBADA, ARC-E/C, PIQA, OpenBookQA and WinoGrande following lm-evaluation-harness conventions.

The eval sets are tokenized by the TypeScript tokenizer (`npm run eval:encode`), so Python never
tokenizes differently from the server.

    /usr/bin/python3 -m scripts.tinylm.evaluate runs/student/final.pt --data build/data/compact-8k \
        --tokenizer build/tokenizer-8k --tasks build/eval/compact-8k.json [--limit 200]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .data import DataError, TokenSplit
from .model import TinyLM
from .progress import Progress


def token_byte_lengths(tokenizer_dir: str | Path) -> torch.Tensor:
    """Bytes of text each token stands for (byte-level BPE: one character per byte); specials count 0."""
    path = Path(tokenizer_dir) / "tokenizer.json"
    try:
        tj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot read tokenizer ({err})") from None
    special = {a["id"] for a in tj.get("added_tokens", [])}
    vocab = tj["model"]["vocab"]
    lengths = torch.zeros(max(vocab.values()) + 1, dtype=torch.long)
    for token, i in vocab.items():
        lengths[i] = 0 if i in special else len(token)
    return lengths


@torch.no_grad()
def bits_per_byte(model: TinyLM, split: TokenSplit, byte_lengths: torch.Tensor, seq_len: int = 256,
                  limit_tokens: int = 0, batch_size: int = 8, device: str = "cpu") -> dict:
    """Mean loss per token and bits per byte over consecutive windows of the split."""
    model.eval()
    n_windows = split.num_windows(seq_len)
    if limit_tokens:
        n_windows = min(n_windows, max(1, limit_tokens // seq_len))
    nll, tokens, nbytes = 0.0, 0, 0
    progress = Progress("validation", n_windows, "windows")
    for start in range(0, n_windows, batch_size):
        windows = torch.arange(start, min(start + batch_size, n_windows)).numpy()
        x, y = split.window_batch(windows, seq_len)
        logits = model(x.to(device))[0].float()
        nll += float(F.cross_entropy(logits.view(-1, logits.size(-1)), y.to(device).view(-1), reduction="sum"))
        tokens += y.numel()
        nbytes += int(byte_lengths[y].sum())
        progress.update(min(start + batch_size, n_windows))
    progress.done()
    return {"val_loss": nll / tokens, "bits_per_byte": nll / math.log(2) / max(nbytes, 1), "tokens": tokens, "bytes": nbytes}


@torch.no_grad()
def score_options(model: TinyLM, options: list[dict], device: str = "cpu", batch_size: int = 32, label: str = "zero-shot") -> list[tuple[float, bool]]:
    """Per option: the continuation's summed log-probability given the context, and whether greedy
    decoding reproduces it. Sequences are sorted by length and right-padded into batches
    (a causal model's output at a position ignores everything after it, so the padding changes nothing),
    scored with whole-batch tensor operations and one read-back per batch."""
    seqs = [((o["context"] + o["continuation"])[-(model.config.max_seq_len + 1):], len(o["continuation"])) for o in options]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))
    results: list[tuple[float, bool]] = [(0.0, False)] * len(seqs)
    progress = Progress(label, len(order), "options")
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = max(len(seqs[i][0]) for i in rows) - 1
        x = torch.zeros(len(rows), width, dtype=torch.long)
        y = torch.zeros(len(rows), width, dtype=torch.long)
        scored = torch.zeros(len(rows), width, dtype=torch.bool)  # the continuation's positions
        for r, i in enumerate(rows):
            ids, n = seqs[i]
            x[r, :len(ids) - 1] = torch.tensor(ids[:-1])
            y[r, :len(ids) - 1] = torch.tensor(ids[1:])
            scored[r, len(ids) - 1 - n:len(ids) - 1] = True
        x, y, scored = x.to(device), y.to(device), scored.to(device)
        logits = model(x)[0].float()
        logprobs = logits.gather(2, y[..., None])[..., 0] - logits.logsumexp(-1)  # no [B, T, vocab] copy
        ll = (logprobs * scored).sum(1)
        greedy = ((logits.argmax(-1) == y) | ~scored).all(1)
        for i, (a, b) in zip(rows, zip(ll.tolist(), greedy.tolist())):
            results[i] = (a, b)
        progress.update(min(start + batch_size, len(order)))
    progress.done()
    return results


def evaluate_task(model: TinyLM, examples: list[dict], device: str = "cpu", label: str = "zero-shot") -> dict:
    """Each example: {"options": [{"context", "continuation", "bytes"}], "gold"}; one option = LAMBADA-style."""
    flat = score_options(model, [o for ex in examples for o in ex["options"]], device, label=label)
    acc = acc_norm = 0
    for ex in examples:
        scored, flat = flat[:len(ex["options"])], flat[len(ex["options"]):]
        if len(scored) == 1:  # LAMBADA: a hit is an exact greedy reproduction
            acc += scored[0][1]
            acc_norm += scored[0][1]
            continue
        ll = [s[0] for s in scored]
        norm = [s[0] / max(1, o["bytes"]) for s, o in zip(scored, ex["options"])]
        acc += int(max(range(len(ll)), key=ll.__getitem__) == ex["gold"])
        acc_norm += int(max(range(len(norm)), key=norm.__getitem__) == ex["gold"])
    n = max(1, len(examples))
    return {"acc": acc / n, "acc_norm": acc_norm / n, "n": len(examples)}


def zero_shot(model: TinyLM, tasks: dict, limit: int = 0, device: str = "cpu") -> dict:
    model.eval()
    results = {name: evaluate_task(model, examples[:limit] if limit else examples, device, name) for name, examples in tasks.items()}
    results["average"] = {"acc": sum(r["acc"] for r in results.values()) / max(1, len(results))}
    return results


def format_table(results: dict) -> str:
    lines = ["| task | acc | acc_norm | n |", "|---|---|---|---|"]
    for name, r in results.items():
        if name != "average":
            lines.append(f"| {name} | {r['acc']:.4f} | {r['acc_norm']:.4f} | {r['n']} |")
    lines.append(f"| **average** | {results['average']['acc']:.4f} | | |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--tasks", default="", help="tokenized eval sets (npm run eval:encode)")
    ap.add_argument("--limit", type=int, default=0, help="examples per task (0: all)")
    ap.add_argument("--limit-tokens", type=int, default=0, help="validation tokens (0: all)")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="", help="write the results as JSON here")
    args = ap.parse_args(argv)
    try:
        model = model_from_checkpoint(load_checkpoint(args.checkpoint), args.checkpoint).to(args.device)
        split = TokenSplit(args.data, "val")
        if split.vocab_size != model.config.vocab_size:
            raise DataError(f"{args.data}: vocabulary {split.vocab_size} ≠ model's {model.config.vocab_size}")
        results = {"validation": bits_per_byte(model, split, token_byte_lengths(args.tokenizer), args.seq_len,
                                               args.limit_tokens, device=args.device)}
        if args.tasks:
            try:
                tasks = json.loads(Path(args.tasks).read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise DataError(f"{args.tasks}: cannot read tokenized eval sets ({err})") from None
            results["zero_shot"] = zero_shot(model, tasks, args.limit, args.device)
    except (DataError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    v = results["validation"]
    print(f"validation: loss {v['val_loss']:.4f}/token, {v['bits_per_byte']:.4f} bits/byte over {v['tokens']} tokens")
    if "zero_shot" in results:
        print(format_table(results["zero_shot"]))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    from .cpu import tune_malloc

    tune_malloc()  # before torch allocates: see cpu.py
    sys.exit(main(sys.argv[1:]))
