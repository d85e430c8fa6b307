"""The evaluation stage that recipe.py, study.py and study score share: a trained model → bits per
byte on held-out text and, when tasks are given, zero-shot accuracies. (The inheritance stage before
training, inherit_student, is in inherit.py, beside its CLI.)
"""
from __future__ import annotations

import json
from pathlib import Path

from .data import TokenSplit
from .evaluate import bits_per_byte, token_byte_lengths, zero_shot
from .model import TinyLM


def evaluate_model(model: TinyLM, data: str | Path, tokenizer: str | Path, seq_len: int, limit_tokens: int = 0,
                   tasks: str | Path | None = None, task_limit: int = 0, device: str = "cpu", batch_size: int = 8) -> dict:
    """Held-out bits per byte (and loss), plus zero-shot accuracies when a tasks file is given."""
    result = {"validation": bits_per_byte(model, TokenSplit(data, "val"), token_byte_lengths(tokenizer), seq_len=seq_len,
                                          limit_tokens=limit_tokens, batch_size=batch_size, device=device)}
    if tasks and Path(tasks).exists():
        result["zero_shot"] = zero_shot(model, json.loads(Path(tasks).read_text()), task_limit, device)
    return result
