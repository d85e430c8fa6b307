"""Training: AdamW, warmup + cosine, clipping, accumulation, periodic validation, atomic checkpoints with
exact resume, JSONL log, multiple rounds, and DistributedDataParallel under torchrun.

    /usr/bin/python3 -m scripts.tinylm.train configs/tiny.toml
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable

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


# ---- one training process, in small steps (as nanoGPT's train.py splits its loop) ----------------

@dataclass
class Run:
    """What a training process holds fixed: config, device, data, model, optimizer, log."""
    cfg: Config
    device: str
    autocast: Callable
    ddp: bool
    rank: int
    world: int
    plan: BatchPlan
    val_split: TokenSplit
    model: TinyLM
    run_model: torch.nn.Module  # the model as trained: compiled and/or wrapped in DDP
    optimizer: torch.optim.Optimizer
    log_file: IO | None  # the master's log.jsonl (None elsewhere)

    @property
    def master(self) -> bool:
        return self.rank == 0

    @property
    def micro_per_step(self) -> int:
        return self.cfg.train.grad_accum * self.world

    @property
    def resume_path(self) -> Path:
        return Path(self.cfg.train.out_dir) / "ckpt.pt"

    def log(self, entry: dict) -> None:
        if self.log_file:
            self.log_file.write(json.dumps(entry) + "\n")
            self.log_file.flush()


@dataclass
class Position:
    """Where a run is: what a checkpoint records beside the weights and the optimizer."""
    round: int = 1
    step: int = 0
    round_batches: list[int] | None = None  # a later round's batches, drawn from the round before
    tokens_seen: int = 0


def init_distributed(tc) -> tuple[bool, int, int, str]:
    """(ddp, rank, world size, device) for this process: DDP when torchrun started several."""
    device = pick_device(tc.device)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False, 0, 1, device
    torch.distributed.init_process_group("nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    return True, torch.distributed.get_rank(), torch.distributed.get_world_size(), device


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def resume_state(tc, resume_path: Path) -> dict | None:
    """The checkpoint to go on from: this run's own ckpt.pt, else a finished run's (branch_from) whose
    next round this config trains; None for a fresh run."""
    if resume_path.exists():
        return load_checkpoint(resume_path)
    if not tc.branch_from:
        return None
    state = load_checkpoint(tc.branch_from)
    if "optimizer" not in state:  # a weights-only final.pt of a 1-round run: the optimizer starts afresh
        state = {**state, "round": 1, "step": tc.max_steps, "round_batches": None, "done": True}
    if not state.get("done") or state["round"] >= tc.rounds:
        raise ConfigError(f"{tc.branch_from}: branch_from needs a finished run with fewer than {tc.rounds} rounds")
    if state["round"] == 1 and state["step"] != tc.max_steps:
        raise ConfigError(f"{tc.branch_from}: its round 1 ran {state['step']} steps, this config says max_steps {tc.max_steps}")
    return state


def build_model(cfg: Config, state: dict | None, source: str) -> TinyLM:
    """The checkpoint's model, else init_from's (which must have the configured shape), else a new one."""
    if state is not None:
        return model_from_checkpoint(state, source)
    if cfg.train.init_from:
        model = model_from_checkpoint(load_checkpoint(cfg.train.init_from), cfg.train.init_from)
        if vars(model.config) != vars(cfg.model):
            raise ConfigError(f"{cfg.train.init_from}: model config {vars(model.config)} differs from [model] {vars(cfg.model)}")
        return model
    return TinyLM(cfg.model)


def steps_in_round(run: Run, pos: Position) -> int:
    tc = run.cfg.train
    if pos.round == 1:
        return tc.max_steps
    return tc.round_steps or max(1, len(pos.round_batches) // run.micro_per_step)


def micro_batch_id(run: Run, pos: Position, k: int) -> int:
    """The batch of micro-step k of this step on this rank: in order in round 1, from the drawn list after."""
    i = pos.step * run.micro_per_step + k * run.world + run.rank
    return i if pos.round == 1 else pos.round_batches[i % len(pos.round_batches)]


def save_checkpoint(run: Run, pos: Position, done: bool = False) -> None:
    if not run.master:
        return
    save_atomic({
        **weights_only(run.model),
        "optimizer": run.optimizer.state_dict(),
        "round": pos.round, "step": pos.step, "round_batches": pos.round_batches,
        "tokens_seen": pos.tokens_seen, "rng": rng_state(),
        "config": {"model": vars(run.cfg.model), "train": vars(run.cfg.train)},
        "done": done,
    }, run.resume_path)


def train_step(run: Run, pos: Position, total: int) -> tuple[float, torch.Tensor, torch.Tensor]:
    """One optimizer step at this position (learning rate, accumulated micro-batches, clipping):
    (lr, mean loss, gradient norm), the last two still on the device."""
    tc = run.cfg.train
    lr = lr_at(pos.step, total, tc, tc.round_lr if pos.round > 1 and tc.round_lr else None, pos.round)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    loss_sum = 0.0  # kept on the device: reading it every step would stall a GPU
    for k in range(tc.grad_accum):
        x, y = run.plan.batch(micro_batch_id(run, pos, k))
        sync = contextlib.nullcontext() if not run.ddp or k == tc.grad_accum - 1 else run.run_model.no_sync()
        with sync, run.autocast():
            _, loss, _ = run.run_model(x.to(run.device), y.to(run.device))
            (loss / tc.grad_accum).backward()
        loss_sum = loss_sum + loss.detach() / tc.grad_accum
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), tc.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return lr, loss_sum, grad_norm


def next_round_batches(run: Run, pos: Position, total: int) -> list[int]:
    """The round just finished: score the batches it trained and draw the next round's from them."""
    tc = run.cfg.train
    trained = pos.round_batches if pos.round > 1 else list(range(total * run.micro_per_step))
    fresh = tc.round_sampling == "fresh"  # needs no scores, and must start after every batch seen
    if not fresh and tc.round_score_limit and len(trained) > tc.round_score_limit:  # CPU budget: an even subset
        trained = [trained[i * len(trained) // tc.round_score_limit] for i in range(tc.round_score_limit)]
    losses = None if fresh else score_batches(run.model, run.plan.batch, trained, run.device, run.autocast)
    batches = sample_batches(trained, losses, tc.round_fraction, tc.round_sampling, tc.seed + pos.round)
    run.log({"round": pos.round, "step": pos.step, "scored_batches": 0 if losses is None else len(trained),
             "sampled_batches": len(batches), "sampling": tc.round_sampling,
             "scored_mean_loss": None if losses is None else float(losses.mean()),
             # How far loss-weighted sampling can depart from uniform: exp(loss) weights of batches
             # whose losses spread ~0.04 nats sit within a few percent of each other.
             "scored_loss_std": None if losses is None else float(losses.std()),
             "scored_loss_range": None if losses is None else float(losses.max() - losses.min()),
             "tokens": pos.tokens_seen})
    return batches


def finish(run: Run, pos: Position) -> Path:
    """The last checkpoint (done), then final.pt: the weights first, then again with their validation loss."""
    tc = run.cfg.train
    save_checkpoint(run, pos, done=True)
    final = Path(tc.out_dir) / "final.pt"
    if run.master:
        meta = {"tokens_seen": pos.tokens_seen, "data_dir": tc.data_dir, "rounds": tc.rounds}
        save_atomic(weights_only(run.model, {**meta, "val_loss": None}), final)
        val = evaluate(run.model, run.val_split, tc, run.device, run.autocast)
        save_atomic(weights_only(run.model, {**meta, "val_loss": val}), final)
    return final


def setup(cfg: Config) -> tuple[Run, Position]:
    """Everything before the first step: device, seeds, data, the model (resumed, branched, initialised
    or new), the optimizer and where the run stands."""
    tc = cfg.train
    out = Path(tc.out_dir)
    ddp, rank, world, device = init_distributed(tc)
    if tc.threads > 0:
        set_threads(tc.threads)
    seed_everything(tc.seed)
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
    state = resume_state(tc, resume_path)
    model = build_model(cfg, state, str(resume_path if resume_path.exists() else tc.branch_from)).to(device)
    optimizer = make_optimizer(model, tc, device.split(":")[0])
    run_model = model
    if tc.compile and hasattr(torch, "compile") and device.startswith("cuda"):
        run_model = torch.compile(model)
    if ddp:
        run_model = torch.nn.parallel.DistributedDataParallel(run_model, device_ids=[device] if device.startswith("cuda") else None)

    pos = Position()
    if state is not None:
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
            set_rng_state(state["rng"])
        pos = Position(state["round"], state["step"], state["round_batches"], state["tokens_seen"])
        if rank == 0:
            truncate_log(out / "log.jsonl", pos.step, pos.round)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps({"model": vars(cfg.model), "train": vars(tc)}, indent=2))
    log_file = open(out / "log.jsonl", "a") if rank == 0 else None
    return Run(cfg, device, autocast, ddp, rank, world, plan, val_split, model, run_model, optimizer, log_file), pos


def train(cfg: Config, stop_after: int | None = None) -> Path:
    """Train (or resume) the run in cfg.train.out_dir; returns the path of final.pt.

    stop_after: stop (after checkpointing) once this many optimizer steps ran in this process —
    used to test that an interrupted run resumes exactly.
    """
    tc = cfg.train
    run, pos = setup(cfg)
    steps_this_process = 0
    tokens_per_step = run.micro_per_step * tc.batch_size * tc.seq_len
    while pos.round <= tc.rounds:
        total = steps_in_round(run, pos)
        progress = Progress((total - pos.step) * tokens_per_step)
        start_tokens, t0 = pos.tokens_seen, time.time()
        while pos.step < total:
            lr, loss_sum, grad_norm = train_step(run, pos, total)
            pos.step += 1
            pos.tokens_seen += tokens_per_step
            steps_this_process += 1
            if pos.step % tc.log_interval == 0 or pos.step == total:
                loss_sum, grad_norm = float(loss_sum), float(grad_norm)
                elapsed = time.time() - t0
                run.log({"round": pos.round, "step": pos.step, "loss": loss_sum, "lr": lr, "grad_norm": grad_norm,
                         "tokens": pos.tokens_seen, "tok_per_s": (pos.tokens_seen - start_tokens) / max(elapsed, 1e-9)})
                if run.master:
                    progress.show(pos.tokens_seen - start_tokens, pos.step, loss_sum)
            # Save first: an evaluation cut short (a time limit, a crash) must not lose the steps.
            if pos.step % tc.checkpoint_interval == 0 or pos.step == total:
                save_checkpoint(run, pos)
            if pos.step % tc.eval_interval == 0 or pos.step == total:
                val = evaluate(run.model, run.val_split, tc, run.device, run.autocast)
                run.log({"round": pos.round, "step": pos.step, "val_loss": val, "tokens": pos.tokens_seen})
            if stop_after is not None and steps_this_process >= stop_after and pos.step < total:
                save_checkpoint(run, pos)
                if run.log_file:
                    run.log_file.close()
                return run.resume_path
        if pos.round < tc.rounds:
            pos.round_batches = next_round_batches(run, pos, total)
        pos.round += 1
        pos.step = 0
        if pos.round <= tc.rounds:
            save_checkpoint(run, pos)
    pos.round -= 1
    pos.step = steps_in_round(run, pos)
    final = finish(run, pos)
    if run.log_file:
        run.log_file.close()
    if run.ddp:
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
