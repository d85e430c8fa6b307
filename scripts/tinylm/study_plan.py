"""The study's plan: configs/study.toml read into arms (instances of shape × vocabulary × method), what
each arm needs before it can start, and the full spec an arm's process runs from."""
from __future__ import annotations

import json
from pathlib import Path

from .config import ConfigError, read_toml

def load_study(path: str | Path | dict) -> dict:
    """A study config: a TOML file, the same as JSON (a generated config, as the tests write), or a dict."""
    if isinstance(path, dict):
        study = path
    elif str(path).endswith(".json"):
        try:
            study = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"{path}: cannot read the study config ({err})") from None
    else:
        study = read_toml(path)
    for key in ("study", "vocab", "shape", "train", "arm"):
        if key not in study:
            raise ConfigError(f"{path}: missing [{key}] table")
    for name, arm in study["arm"].items():
        if "branch" not in arm and ("shape" not in arm or "vocab" not in arm or "tokens" not in arm):
            raise ConfigError(f"{path}: arm {name} needs shape, vocab and tokens (or branch)")
    return study


def instances(study: dict) -> dict[str, dict]:
    """One entry per (arm, seed): the first seed keeps the arm's name, others are name@seed."""
    out = {}
    for name, arm in study["arm"].items():
        seeds = arm.get("seeds", [study["train"].get("seed", 1337)])
        for k, seed in enumerate(seeds):
            out[name if k == 0 else f"{name}@{seed}"] = {**arm, "arm": name, "seed": seed}
    return out


def needs(inst: dict) -> list[str]:
    if "branch" in inst:
        return list(inst["branch"])
    if "compute_matched" in inst:
        return [inst["compute_matched"]]
    return [inst["inherit"]["parent"]] if "inherit" in inst else []


def flops_per_token(shape: dict) -> float:
    """Training FLOPs per token of a shape: 6 × the weights a token passes through (attention
    projections, SwiGLU, and the LM head, which costs its full size even when tied)."""
    d, hd = shape["d_model"], shape.get("head_dim") or shape["d_model"] // shape["n_heads"]
    attention = 2 * d * shape["n_heads"] * hd + 2 * d * shape["n_kv_heads"] * hd
    per_layer = attention + 3 * d * shape["ffn_hidden"]
    return 6.0 * (shape["n_layers"] * per_layer + shape["vocab_size"] * d)


def compute_matched_tokens(study: dict, inst: dict, parent_tokens: float) -> float:
    """An arm's own tokens plus the student tokens that cost as much compute as the parent's training:
    the from-scratch control for inheritance at equal compute (the parent is not free)."""
    parent = study["arm"][inst["compute_matched"]]
    ratio = flops_per_token(study["shape"][parent["shape"]]) / flops_per_token(study["shape"][inst["shape"]])
    return inst["tokens"] + parent_tokens * ratio


def arm_tokens(study: dict, inst: dict, scale: float, done: dict) -> float:
    """The tokens an arm (not a branch) trains at this token scale: its own, scaled; the compute-matched
    control adds the parent's tokens as trained (when done) or as planned, in student-token equivalents."""
    tokens = inst["tokens"] * scale
    if "compute_matched" in inst:
        parent = done.get(inst["compute_matched"], {}).get("tokens")
        if parent is None:
            parent = study["arm"][inst["compute_matched"]]["tokens"] * scale
        tokens += compute_matched_tokens(study, inst, parent) - inst["tokens"]
    return tokens


def tokens_per_step(train_cfg: dict) -> int:
    return train_cfg["batch_size"] * train_cfg["seq_len"] * train_cfg.get("grad_accum", 1)


def base_train(study: dict, inst: dict) -> dict:
    return {**study["train"], **study["vocab"][inst["vocab"]].get("train", {}), **inst.get("train", {})}


def branch_base(inst: dict, done: dict) -> str | None:
    """The candidate a round-2 branch goes on from: the finished one (of this run's candidates) with the
    lowest validation loss; None while none has finished."""
    ok = [c for c in inst["branch"] if done.get(c, {}).get("ok")]
    return min(ok, key=lambda c: done[c]["val_loss"]) if ok else None


def resolve(study: dict, name: str, inst: dict, out: Path, scale: float, done: dict) -> dict:
    """The arm's model and train config (as TrainConfig fields), given the finished arms it needs."""
    run_dir = out / name
    if "branch" in inst:
        base = branch_base(inst, done)
        spec = json.loads((out / base / "arm.json").read_text())
        train_cfg = {**spec["train"], **inst.get("train", {}), "out_dir": str(run_dir),
                     "branch_from": str(out / base / "ckpt.pt"), "init_from": ""}
        return {**spec, "name": name, "arm": inst["arm"], "branched_from": base, "train": train_cfg,
                "inherit": None, "describe": inst.get("describe", spec["describe"])}
    train_cfg = base_train(study, inst)
    steps = max(4, round(arm_tokens(study, inst, scale, done) / tokens_per_step(train_cfg)))
    train_cfg.update(max_steps=steps, warmup_steps=min(train_cfg.get("warmup_steps", 0), steps // 5) or 1,
                     data_dir=study["vocab"][inst["vocab"]]["data"], out_dir=str(run_dir), seed=inst["seed"])
    inh = inst.get("inherit")
    if inh:
        train_cfg["init_from"] = str(run_dir / "init.pt")
        inh = {**inh, "parent_ckpt": str(out / inh["parent"] / "final.pt"),
               "parent_data": study["vocab"][done[inh["parent"]]["vocab"]]["data"],
               "vocab_map": study["vocab"][inst["vocab"]]["vocab_map"]}
    return {"name": name, "arm": inst["arm"], "vocab": inst["vocab"], "shape": inst["shape"],
            "model": study["shape"][inst["shape"]], "train": train_cfg, "inherit": inh,
            "describe": inst.get("describe", name),
            "eval": {**study["vocab"][inst["vocab"]], "limit": study["study"].get("eval_limit", 0),
                     "limit_tokens": study["study"].get("eval_tokens", 0)}}
