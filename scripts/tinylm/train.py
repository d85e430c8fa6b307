"""Training: AdamW, warmup + cosine, clipping, accumulation, periodic validation, atomic checkpoints with
exact resume, JSONL log, multiple rounds, and DistributedDataParallel under torchrun.

    /usr/bin/python3 -m scripts.tinylm.train configs/tiny.toml
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_atomic, weights_only
from .config import Config, ConfigError, load_config
from .cpu import set_threads
from .data import BatchPlan, DataError, TokenSplit
from .model import TinyLM
from .rounds import sample_batches, score_batches


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def make_autocast(device: str, dtype: str):
    use_bf16 = dtype == "bfloat16" or (dtype == "auto" and device == "cuda")
    if use_bf16 and device == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def lr_at(step: int, total: int, cfg, peak: float | None = None, round_: int = 1) -> float:
    """Round 1: linear warmup from 0 to the peak (cfg.lr unless given), then cosine decay to min_lr at
    the end of the round. Later rounds continue from round 1's final rate: a short warmup from min_lr
    (round_warmup_steps; -1: 5% of the round), then the same cosine."""
    peak = cfg.lr if peak is None else peak
    if round_ == 1:
        warmup, start = cfg.warmup_steps, 0.0
    else:
        warmup = cfg.round_warmup_steps if cfg.round_warmup_steps >= 0 else max(1, round(0.05 * total))
        start = cfg.min_lr
    if step < warmup:
        return start + (peak - start) * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - cfg.min_lr)


def make_optimizer(model: TinyLM, cfg, device: str) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device == "cuda" and "fused" in torch.optim.AdamW.__init__.__code__.co_varnames else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **extra)


class Progress:
    def __init__(self, total_tokens: int):
        self.total, self.start = total_tokens, time.time()

    def show(self, done_tokens: int, step: int, loss: float) -> None:
        elapsed = time.time() - self.start
        rate = done_tokens / max(elapsed, 1e-9)
        eta = (self.total - done_tokens) / max(rate, 1e-9)
        bar = "#" * int(24 * done_tokens / max(self.total, 1))
        end = "\r" if sys.stderr.isatty() else "\n"
        sys.stderr.write(f"[{bar:<24}] step {step} loss {loss:.4f} {rate:,.0f} tok/s ETA {eta / 60:.1f} min{end}")


@torch.no_grad()
def evaluate(model, split: TokenSplit, cfg, device, autocast) -> float:
    plan = BatchPlan(split, cfg.seq_len, cfg.batch_size, seed=0)
    n = min(cfg.eval_batches, plan.batches_per_epoch)
    model.eval()
    total = 0.0
    for b in range(n):
        x, y = plan.batch(b)
        with autocast():
            _, loss, _ = model(x.to(device), y.to(device))
        total += float(loss)
    model.train()
    return total / n


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def truncate_log(path: Path, step: int, round_: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    def written_before(line: str) -> bool:
        entry = json.loads(line)
        return (entry.get("round", 1), entry.get("step", 0)) <= (round_, step)

    keep = [line for line in path.read_text().splitlines() if written_before(line)]
    path.write_text("".join(line + "\n" for line in keep))


def train(cfg: Config, stop_after: int | None = None) -> Path:
    """Train (or resume) the run in cfg.train.out_dir; returns the path of final.pt.

    stop_after: stop (after checkpointing) once this many optimizer steps ran in this process —
    used to test that an interrupted run resumes exactly.
    """
    tc = cfg.train
    out = Path(tc.out_dir)
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = 0, 1
    device = pick_device(tc.device)
    if ddp:
        torch.distributed.init_process_group("nccl" if device == "cuda" else "gloo")
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        if device == "cuda":
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
            torch.cuda.set_device(device)
    master = rank == 0
    if tc.threads > 0:
        set_threads(tc.threads)
    torch.manual_seed(tc.seed)
    np.random.seed(tc.seed)
    random.seed(tc.seed)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    autocast = make_autocast(device.split(":")[0], tc.dtype)

    train_split = TokenSplit(tc.data_dir, "train")
    val_split = TokenSplit(tc.data_dir, "val")
    if train_split.vocab_size > cfg.model.vocab_size:
        raise ConfigError(f"data {tc.data_dir} has vocabulary {train_split.vocab_size} > model.vocab_size {cfg.model.vocab_size}")
    plan = BatchPlan(train_split, tc.seq_len, tc.batch_size, tc.seed, tc.batch_grouping)

    resume_path = out / "ckpt.pt"
    state = load_checkpoint(resume_path) if resume_path.exists() else None
    if state is None and tc.branch_from:
        state = load_checkpoint(tc.branch_from)
        if "optimizer" not in state:  # a weights-only final.pt of a 1-round run: the optimizer starts afresh
            state = {**state, "round": 1, "step": tc.max_steps, "round_batches": None, "done": True}
        if not state.get("done") or state["round"] >= tc.rounds:
            raise ConfigError(f"{tc.branch_from}: branch_from needs a finished run with fewer than {tc.rounds} rounds")
        if state["round"] == 1 and state["step"] != tc.max_steps:
            raise ConfigError(f"{tc.branch_from}: its round 1 ran {state['step']} steps, this config says max_steps {tc.max_steps}")
    if state is not None:
        model = model_from_checkpoint(state, str(resume_path if resume_path.exists() else tc.branch_from))
    elif tc.init_from:
        init = load_checkpoint(tc.init_from)
        model = model_from_checkpoint(init, tc.init_from)
        if vars(model.config) != vars(cfg.model):
            raise ConfigError(f"{tc.init_from}: model config {vars(model.config)} differs from [model] {vars(cfg.model)}")
    else:
        model = TinyLM(cfg.model)
    model.to(device)
    optimizer = make_optimizer(model, tc, device.split(":")[0])
    run_model = model
    if tc.compile and hasattr(torch, "compile") and device.startswith("cuda"):
        run_model = torch.compile(model)
    if ddp:
        run_model = torch.nn.parallel.DistributedDataParallel(run_model, device_ids=[device] if device.startswith("cuda") else None)

    micro_per_step = tc.grad_accum * world
    round_, step, round_batches, tokens_seen = 1, 0, None, 0
    if state is not None:
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
            set_rng_state(state["rng"])
        round_, step, round_batches = state["round"], state["step"], state["round_batches"]
        tokens_seen = state["tokens_seen"]
        if master:
            truncate_log(out / "log.jsonl", step, round_)
    if master:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps({"model": vars(cfg.model), "train": vars(tc)}, indent=2))
    log_file = open(out / "log.jsonl", "a") if master else None

    def log(entry: dict) -> None:
        if log_file:
            log_file.write(json.dumps(entry) + "\n")
            log_file.flush()

    def steps_in_round(r: int, batches) -> int:
        if r == 1:
            return tc.max_steps
        return tc.round_steps or max(1, len(batches) // micro_per_step)

    def micro_batch_id(r: int, s: int, k: int, batches) -> int:
        i = s * micro_per_step + k * world + rank
        return i if r == 1 else batches[i % len(batches)]

    def save(done: bool = False) -> None:
        if not master:
            return
        save_atomic({
            **weights_only(model),
            "optimizer": optimizer.state_dict(),
            "round": round_, "step": step, "round_batches": round_batches,
            "tokens_seen": tokens_seen, "rng": rng_state(), "config": {"model": vars(cfg.model), "train": vars(tc)},
            "done": done,
        }, resume_path)

    steps_this_process = 0
    tokens_per_step = micro_per_step * tc.batch_size * tc.seq_len
    while round_ <= tc.rounds:
        total = steps_in_round(round_, round_batches)
        progress = Progress((total - step) * tokens_per_step)
        start_tokens, t0 = tokens_seen, time.time()
        while step < total:
            lr = lr_at(step, total, tc, tc.round_lr if round_ > 1 and tc.round_lr else None, round_)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_sum = 0.0  # kept on the device: reading it every step would stall a GPU
            for k in range(tc.grad_accum):
                x, y = plan.batch(micro_batch_id(round_, step, k, round_batches))
                sync = contextlib.nullcontext() if not ddp or k == tc.grad_accum - 1 else run_model.no_sync()
                with sync, autocast():
                    _, loss, _ = run_model(x.to(device), y.to(device))
                    (loss / tc.grad_accum).backward()
                loss_sum = loss_sum + loss.detach() / tc.grad_accum
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            steps_this_process += 1
            tokens_seen += tokens_per_step
            if step % tc.log_interval == 0 or step == total:
                loss_sum, grad_norm = float(loss_sum), float(grad_norm)
                elapsed = time.time() - t0
                log({"round": round_, "step": step, "loss": loss_sum, "lr": lr, "grad_norm": grad_norm,
                     "tokens": tokens_seen, "tok_per_s": (tokens_seen - start_tokens) / max(elapsed, 1e-9)})
                if master:
                    progress.show(tokens_seen - start_tokens, step, loss_sum)
            # Save first: an evaluation cut short (a time limit, a crash) must not lose the steps.
            if step % tc.checkpoint_interval == 0 or step == total:
                save()
            if step % tc.eval_interval == 0 or step == total:
                val = evaluate(model, val_split, tc, device, autocast)
                log({"round": round_, "step": step, "val_loss": val, "tokens": tokens_seen})
            if stop_after is not None and steps_this_process >= stop_after and step < total:
                save()
                if log_file:
                    log_file.close()
                return resume_path
        # Round finished: pick the batches of the next round.
        if round_ < tc.rounds:
            trained = round_batches if round_ > 1 else list(range(total * micro_per_step))
            fresh = tc.round_sampling == "fresh"  # needs no scores, and must start after every batch seen
            if not fresh and tc.round_score_limit and len(trained) > tc.round_score_limit:  # CPU budget: an even subset
                trained = [trained[i * len(trained) // tc.round_score_limit] for i in range(tc.round_score_limit)]
            losses = None if fresh else score_batches(model, plan.batch, trained, device, autocast)
            round_batches = sample_batches(trained, losses, tc.round_fraction, tc.round_sampling, tc.seed + round_)
            log({"round": round_, "step": step, "scored_batches": 0 if losses is None else len(trained),
                 "sampled_batches": len(round_batches), "sampling": tc.round_sampling,
                 "scored_mean_loss": None if losses is None else float(losses.mean()),
                 # How far loss-weighted sampling can depart from uniform: exp(loss) weights of batches
                 # whose losses spread ~0.04 nats sit within a few percent of each other.
                 "scored_loss_std": None if losses is None else float(losses.std()),
                 "scored_loss_range": None if losses is None else float(losses.max() - losses.min()),
                 "tokens": tokens_seen})
        round_ += 1
        step = 0
        if round_ <= tc.rounds:
            save()
    round_ -= 1
    step = steps_in_round(round_, round_batches)
    save(done=True)
    final = out / "final.pt"
    if master:
        meta = {"tokens_seen": tokens_seen, "data_dir": tc.data_dir, "rounds": tc.rounds}
        save_atomic(weights_only(model, {**meta, "val_loss": None}), final)  # the weights first, then the score
        val = evaluate(model, val_split, tc, device, autocast)
        save_atomic(weights_only(model, {**meta, "val_loss": val}), final)
    if log_file:
        log_file.close()
    if ddp:
        torch.distributed.destroy_process_group()
    return final


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m scripts.tinylm.train", description="Train a model from a TOML config (configs/*.toml).")
    parser.add_argument("config", help="the run's TOML config")
    parser.add_argument("--stop-after", type=int, default=None, metavar="N", help="stop after N steps (a resumable checkpoint is kept)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        path = train(cfg, args.stop_after)
    except (ConfigError, DataError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    from .cpu import tune_malloc

    tune_malloc()  # before torch allocates: see cpu.py
    sys.exit(main(sys.argv[1:]))
