"""The study's budget: each shape's training speed measured by a short probe, and the whole plan's
GPU time at a token scale, so that every arm can be scaled down by one factor to fit."""
from __future__ import annotations

import time

import torch

from .config import ModelConfig, TrainConfig, _fill
from .model import TinyLM
from .study_plan import base_train, compute_matched_tokens, instances, tokens_per_step
from .train import make_autocast, make_optimizer, pick_device


def _rate(study: dict, inst: dict, device: str, steps: int, batch_size: int | None = None) -> float:
    """Training tokens/s of an arm's shape at a batch size, alone, on random tokens."""
    train = base_train(study, inst)
    if batch_size:
        train = {**train, "batch_size": batch_size}
    tc = _fill(TrainConfig, "train", train, "probe")
    model = TinyLM(_fill(ModelConfig, "model", study["shape"][inst["shape"]], "probe")).to(device)
    opt, autocast = make_optimizer(model, tc, device), make_autocast(device, tc.dtype)
    x = torch.randint(0, model.config.vocab_size, (tc.batch_size, tc.seq_len + 1), device=device)
    try:
        for i in range(steps + 2):
            if i == 2:
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.time()
            for _ in range(tc.grad_accum):
                with autocast():
                    loss = model(x[:, :-1], x[:, 1:])[1]
                (loss / tc.grad_accum).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        float(loss.detach())
        return steps * tokens_per_step(vars(tc)) / (time.time() - t0)
    finally:
        del model, opt
        if device == "cuda":
            torch.cuda.empty_cache()


def probe(study: dict, steps: int = 5, todo: dict | None = None) -> tuple[dict[str, float], dict[str, int]]:
    """Training tokens/s of each (shape, vocab) the arms to run use (default: every arm; a round-2
    branch uses its base's), measured alone on random tokens, and for each the batch-size multiplier
    to train with: the study's batch_multipliers ([study], default [1]) are tried and a larger batch is
    kept only if it is ≥ 10% faster (a GPU often is; a CPU is not)."""
    device = pick_device("auto")
    rates: dict[str, float] = {}
    multipliers: dict[str, int] = {}
    every = instances(study)
    for inst in (every if todo is None else todo).values():
        if "branch" in inst:
            inst = every[inst["branch"][0]]
        key = f"{inst['shape']}/{inst['vocab']}"
        if key in rates:
            continue
        base = base_train(study, inst)["batch_size"]
        rates[key], multipliers[key] = _rate(study, inst, device, steps), 1
        for m in study["study"].get("batch_multipliers", [1]):
            if m <= 1:
                continue
            try:
                rate = _rate(study, inst, device, steps, base * m)
            except torch.cuda.OutOfMemoryError if hasattr(torch.cuda, "OutOfMemoryError") else RuntimeError:
                break  # larger ones will not fit either
            if rate >= 1.1 * rates[key]:
                rates[key], multipliers[key] = rate, m
    return rates, multipliers


def arm_estimate_s(study: dict, inst: dict, rates: dict, scale: float) -> float:
    """GPU seconds of one arm at this token scale (its training, plus the per-arm overhead)."""
    insts = instances(study)
    per_arm = study["study"].get("overhead_s", 10)
    if "branch" in inst:
        base = insts[inst["branch"][0]]
        secs = scale * base["tokens"] / rates[f"{base['shape']}/{base['vocab']}"]
        frac = {**study["train"], **inst.get("train", {})}.get("round_fraction", 0.5)
        return secs * (frac + 0.35) + per_arm
    tokens = compute_matched_tokens(study, inst, insts[inst["compute_matched"]]["tokens"]) if "compute_matched" in inst else inst["tokens"]
    return scale * tokens / rates[f"{inst['shape']}/{inst['vocab']}"] + per_arm


def estimate_s(study: dict, rates: dict, scale: float, todo: dict | None = None) -> float:
    """GPU seconds of the arms still to run (default: the whole plan) if they ran one after another
    (a safe upper bound)."""
    return sum(arm_estimate_s(study, inst, rates, scale) for inst in (instances(study) if todo is None else todo).values())
