"""The inherit → train → evaluate stage that recipe.py, study.py and the inherit CLI share.

inherit_student: a parent checkpoint, calibration text in the parent's vocabulary and a vocab map →
an initialised student checkpoint (the paper's parameter inheritance). evaluate_model: a trained
model → bits per byte on held-out text and, when tasks are given, zero-shot accuracies.
"""
from __future__ import annotations

import json
from pathlib import Path

from .checkpoint import load_checkpoint, model_from_checkpoint, save_atomic, weights_only
from .config import ConfigError, ModelConfig
from .data import TokenSplit
from .evaluate import bits_per_byte, token_byte_lengths, zero_shot
from .inherit import calibration_batches, inherit
from .model import TinyLM


def read_vocab_map(path: str | Path) -> list[int]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read vocab map ({err})") from None


def inherit_student(parent_ckpt: str | Path, calib_data: str | Path, vocab_map_path: str | Path, student: ModelConfig,
                    out: str | Path, options: dict, seed: int, device: str = "cpu") -> tuple[TinyLM, dict]:
    """Build the student from the parent and save it at `out` (weights and how it was inherited).
    `options`: layers, width, first, seq_len, batch_size, calib_batches, mask_steps (the TOML [inherit])."""
    parent = model_from_checkpoint(load_checkpoint(parent_ckpt), str(parent_ckpt))
    split = TokenSplit(calib_data, "train")
    if split.vocab_size > parent.config.vocab_size:
        raise ConfigError(f"{calib_data}: vocabulary {split.vocab_size} is not the parent's ({parent.config.vocab_size})")
    batches = calibration_batches(calib_data, options.get("seq_len", 128), options.get("batch_size", 8),
                                  options.get("calib_batches", 8), seed)
    model, info = inherit(parent, student, read_vocab_map(vocab_map_path), batches, options.get("layers", "first_last"),
                          options.get("width", "taylor"), options.get("first"), device=device,
                          mask_steps=options.get("mask_steps", 200))
    info = {**info, "parent": str(parent_ckpt)}
    save_atomic(weights_only(model, {"inherited": info}), out)
    return model, info


def evaluate_model(model: TinyLM, data: str | Path, tokenizer: str | Path, seq_len: int, limit_tokens: int = 0,
                   tasks: str | Path | None = None, task_limit: int = 0, device: str = "cpu", batch_size: int = 8) -> dict:
    """Held-out bits per byte (and loss), plus zero-shot accuracies when a tasks file is given."""
    result = {"validation": bits_per_byte(model, TokenSplit(data, "val"), token_byte_lengths(tokenizer), seq_len=seq_len,
                                          limit_tokens=limit_tokens, batch_size=batch_size, device=device)}
    if tasks and Path(tasks).exists():
        result["zero_shot"] = zero_shot(model, json.loads(Path(tasks).read_text()), task_limit, device)
    return result
