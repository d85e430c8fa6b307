"""The study's budget: each shape's training speed, and the whole plan's GPU time at a token scale,
so that every arm can be scaled down by one factor to fit.

A speed is what training logged when it can be had (log.jsonl's tok_per_s: data loading, logging and
evaluations included), from an arm of this run or from the config's table of an earlier run on this
device; only a shape with neither is measured by a short probe on random tokens, which is faster
than training (H200, the student: 634k tokens/s probed, 498k logged), so its rate is discounted."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .config import ModelConfig, TrainConfig, _fill
from .model import TinyLM
from .study_plan import arm_tokens, base_train, branch_base, instances, tokens_per_step

# A round-2 branch also scores its base's batches first: a forward pass only, about a third of a
# training step's time per token.
SCORING_COST = 0.35


def device_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def rate_key(study: dict, inst: dict) -> str:
    """Which speed an arm trains at: its shape and vocabulary (a branch's: its first candidate's)."""
    if "branch" in inst:
        inst = instances(study)[inst["branch"][0]]
    return f"{inst['shape']}/{inst['vocab']}"


def logged_rate(log: Path) -> float | None:
    """The last training rate a run's log.jsonl holds (tokens since its round began ÷ wall time)."""
    if not log.exists():
        return None
    rates = [e["tok_per_s"] for e in map(json.loads, log.read_text().splitlines()) if "tok_per_s" in e]
    return rates[-1] if rates else None


def logged_rates(study: dict, todo: dict, done: dict, out: Path) -> dict[str, float]:
    """Logged tokens/s for the shapes of the arms to run: from an arm of this run that trained at that
    shape, else from [study.logged_tokens_per_s."<device>"] (an earlier run on this device)."""
    insts = instances(study)
    table = study["study"].get("logged_tokens_per_s", {}).get(device_name(), {})
    wanted = {rate_key(study, inst) for inst in todo.values()}
    rates = {k: float(v) for k, v in table.items() if k in wanted}
    for name in done:
        key = rate_key(study, insts[name]) if name in insts else None
        rate = logged_rate(out / name / "log.jsonl") if key in wanted else None
        if rate:
            rates[key] = rate
    return rates
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


def probe(study: dict, steps: int = 5, todo: dict | None = None,
          cache: Path | None = None) -> tuple[dict[str, float], dict[str, int]]:
    """Training tokens/s of each (shape, vocab) the arms to run use (default: every arm; a round-2
    branch uses its base's), measured alone on random tokens, and for each the batch-size multiplier
    to train with: the study's batch_multipliers ([study], default [1]) are tried and a larger batch is
    kept only if it is ≥ 10% faster (a GPU often is; a CPU is not). cache: a JSON file keeping what
    was measured on this device, so a later call of the same run does not measure it again."""
    device = pick_device("auto")
    saved = json.loads(cache.read_text()) if cache and cache.exists() else {}
    if saved.get("device") != device_name():
        saved = {}
    rates: dict[str, float] = {}
    multipliers: dict[str, int] = {}
    every = instances(study)
    for inst in (every if todo is None else todo).values():
        if "branch" in inst:
            inst = every[inst["branch"][0]]
        key = f"{inst['shape']}/{inst['vocab']}"
        if key in rates:
            continue
        if key in saved.get("rates", {}):
            rates[key], multipliers[key] = saved["rates"][key], saved["multipliers"][key]
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
    if cache:
        saved = {"device": device_name(), "rates": {**saved.get("rates", {}), **rates},
                 "multipliers": {**saved.get("multipliers", {}), **multipliers}}
        cache.write_text(json.dumps(saved, indent=1))
    return rates, multipliers


def arm_estimate_s(study: dict, inst: dict, rates: dict, scale: float, done: dict | None = None) -> float:
    """GPU seconds of one arm at this token scale (its training, plus the per-arm overhead), from the
    tokens it will really train: a round-2 branch's follow from what its base trained (when the base
    is done, whatever scale that ran at), the compute-matched control's from the parent's."""
    done = done or {}
    per_arm = study["study"].get("overhead_s", 10)
    rate = rates[rate_key(study, inst)]
    if "branch" not in inst:
        return arm_tokens(study, inst, scale, done) / rate + per_arm
    first = instances(study)[inst["branch"][0]]
    base = branch_base(inst, done)
    base_tokens = done[base]["tokens"] if base else arm_tokens(study, first, scale, done)
    train = {**base_train(study, first), **inst.get("train", {})}
    step_tokens = tokens_per_step(train)
    round2 = train["round_steps"] * step_tokens if train.get("round_steps") else train.get("round_fraction", 0.5) * base_tokens
    scored = min(base_tokens, train["round_score_limit"] * step_tokens) if train.get("round_score_limit") else base_tokens
    if train.get("round_sampling") == "fresh":
        scored = 0  # unseen batches need no scores
    return (round2 + SCORING_COST * scored) / rate + per_arm


def estimate_s(study: dict, rates: dict, scale: float, todo: dict | None = None, done: dict | None = None) -> float:
    """GPU seconds of the arms still to run (default: the whole plan) if they ran one after another
    (a safe upper bound)."""
    return sum(arm_estimate_s(study, inst, rates, scale, done) for inst in (instances(study) if todo is None else todo).values())


def fitting_scale(study: dict, rates: dict, avail_s: float, todo: dict, done: dict) -> float:
    """The largest token scale (≤ 1) at which the arms to run fit avail_s. The estimate is linear in
    the scale, but not proportional: overheads, and branches of arms already trained, do not shrink."""
    fixed, full = estimate_s(study, rates, 0.0, todo, done), estimate_s(study, rates, 1.0, todo, done)
    if full <= avail_s or full <= fixed:
        return 1.0
    return max(1e-3, (avail_s - fixed) / (full - fixed))
