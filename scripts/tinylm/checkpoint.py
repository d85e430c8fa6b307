"""Checkpoints: written atomically (temp file + rename), loaded with clear errors."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .config import ModelConfig, model_config_from_dict
from .model import TinyLM


class CheckpointError(ValueError):
    pass


def save_atomic(obj: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        # Our own files: they hold numpy/python RNG state, which torch ≥ 2.6's weights_only default refuses.
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a damaged file
        raise CheckpointError(f"{path}: not a readable checkpoint ({err.__class__.__name__}: {err})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        raise CheckpointError(f"{path}: checkpoint lacks 'model' or 'model_config'")
    return ckpt


def model_from_checkpoint(ckpt: dict, source: str = "checkpoint") -> TinyLM:
    cfg = model_config_from_dict(dict(ckpt["model_config"]), source)
    model = TinyLM(cfg)
    state = {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in ckpt["model"].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to embed_tokens
    if missing or unexpected:
        raise CheckpointError(f"{source}: tensors missing {missing[:5]} / unexpected {unexpected[:5]}")
    return model


def weights_only(model: TinyLM, extra: dict | None = None) -> dict:
    """A small checkpoint with just the model (for inheritance, eval and export)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    return {"model": state, "model_config": vars(model.config).copy(), **(extra or {})}


def config_dict(cfg: ModelConfig) -> dict:
    return vars(cfg).copy()
