"""Configs: dataclasses filled from TOML files, with one clear error for a missing or bad key."""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    pass


@dataclass
class ModelConfig:
    vocab_size: int = 8192
    d_model: int = 256
    n_layers: int = 8
    n_heads: int = 4
    n_kv_heads: int = 2
    ffn_hidden: int = 688
    max_seq_len: int = 512
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(f"model.n_heads ({self.n_heads}) must be divisible by model.n_kv_heads ({self.n_kv_heads})")
        if (self.d_model // self.n_heads) % 2:
            raise ConfigError("model head dimension (d_model / n_heads) must be even for rotary embeddings")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


@dataclass
class TrainConfig:
    data_dir: str = "build/data/compact-8k"
    out_dir: str = "runs/tiny"
    seq_len: int = 256
    batch_size: int = 16
    grad_accum: int = 1
    max_steps: int = 1000
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_interval: int = 200
    eval_batches: int = 20
    log_interval: int = 10
    checkpoint_interval: int = 200
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | float32 | bfloat16
    compile: bool = False
    threads: int = 0  # CPU threads for torch (0: leave torch's default)
    # Multiple-round training: round r+1 trains on a loss-weighted sample of round r's batches.
    rounds: int = 1
    round_fraction: float = 0.5
    round_sampling: str = "loss"  # loss (∝ exp(loss)) | uniform | fresh (unseen batches: the equal-token control)
    round_steps: int = 0  # steps of each later round (0: as many as the sampled batches)
    round_score_limit: int = 0  # score at most this many (evenly spaced) batches of a round (0: all, as the paper)
    round_lr: float = 0.0  # peak learning rate of later rounds (0: lr)
    # Later rounds warm up from where round 1 ended (min_lr) to their peak over this many steps (-1:
    # 5% of the round), not from zero over warmup_steps (that re-warm was 18% of a GPU round 2).
    round_warmup_steps: int = -1
    # How batches are drawn: shuffled windows, or runs of consecutive windows (one stretch of a book
    # per batch, so batch losses differ and loss-weighted rounds have something to weigh).
    batch_grouping: str = "shuffled"
    init_from: str = ""  # checkpoint to start from (e.g. an inherited student)
    # A finished run's ckpt.pt to continue from into its next round with this config's round settings,
    # so several later-round variants can share one round 1.
    branch_from: str = ""


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _fill(cls: type, section: str, values: Any, source: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: [{section}] must be a table")
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown key {section}.{key}")
        expected = known[key].type
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
        }.get(expected, True)
        if not ok:
            raise ConfigError(f"{source}: {section}.{key} must be {expected}, got {value!r}")
    try:
        return cls(**values)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def model_config_from_dict(values: dict, source: str = "checkpoint") -> ModelConfig:
    return _fill(ModelConfig, "model", values, source)


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None


def load_config(path: str | Path) -> Config:
    path = Path(path)
    data = read_toml(path)
    if "model" not in data:
        raise ConfigError(f"{path}: missing [model] table")
    return Config(
        model=_fill(ModelConfig, "model", data["model"], str(path)),
        train=_fill(TrainConfig, "train", data.get("train", {}), str(path)),
    )
