"""The ablation study (PanGu-π Pro's four formulas at small scale) and the shipped model, in one run.

Each arm of configs/study.toml is one training run (optionally inherited from another arm, or
branched from a finished arm into a second round), trained and evaluated in its own process. Arms
run concurrently on one GPU as soon as the arms they need are done. A short probe measures each
shape's training speed first; if the whole plan would not fit in --budget-s, every arm's token
count is scaled down by the same factor (comparisons stay at equal tokens).

    python3 -m scripts.tinylm.study run configs/study.toml --budget-s 420
    python3 -m scripts.tinylm.study collect runs/study OUT_DIR     # results + logs + shipped weights
    /usr/bin/python3 -m scripts.tinylm.study report runs/study     # markdown tables (docs/ablations.md)
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, model_from_checkpoint, save_atomic, weights_only
from .config import Config, ConfigError, ModelConfig, TrainConfig, _fill, read_toml
from .data import TokenSplit
from .evaluate import bits_per_byte, token_byte_lengths, zero_shot
from .inherit import calibration_batches, inherit
from .model import TinyLM
from .train import make_autocast, make_optimizer, pick_device, train

TASK_COLUMNS = ("lambada_openai", "arc_easy", "arc_challenge", "piqa", "openbook_qa", "winogrande")


# ---- the plan ------------------------------------------------------------------------------------

def load_study(path: str | Path | dict) -> dict:
    """A study config (TOML path, or the same as a dict)."""
    study = path if isinstance(path, dict) else read_toml(path)
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
    return [inst["inherit"]["parent"]] if "inherit" in inst else []


def tokens_per_step(train_cfg: dict) -> int:
    return train_cfg["batch_size"] * train_cfg["seq_len"] * train_cfg.get("grad_accum", 1)


def base_train(study: dict, inst: dict) -> dict:
    return {**study["train"], **study["vocab"][inst["vocab"]].get("train", {}), **inst.get("train", {})}


def resolve(study: dict, name: str, inst: dict, out: Path, scale: float, done: dict) -> dict:
    """The arm's model and train config (as TrainConfig fields), given the finished arms it needs."""
    run_dir = out / name
    if "branch" in inst:  # the best finished candidate (lowest validation loss) goes on into round 2
        ok = [c for c in inst["branch"] if done.get(c, {}).get("ok")]  # (the candidates of this run)
        base = min(ok, key=lambda c: done[c]["val_loss"])
        spec = json.loads((out / base / "arm.json").read_text())
        train_cfg = {**spec["train"], **inst.get("train", {}), "out_dir": str(run_dir),
                     "branch_from": str(out / base / "ckpt.pt"), "init_from": ""}
        return {**spec, "name": name, "arm": inst["arm"], "branched_from": base, "train": train_cfg,
                "inherit": None, "describe": inst.get("describe", spec["describe"])}
    train_cfg = base_train(study, inst)
    steps = max(4, round(inst["tokens"] * scale / tokens_per_step(train_cfg)))
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


# ---- one arm (in its own process) -----------------------------------------------------------------

def run_arm(run_dir: Path) -> dict:
    spec = json.loads((run_dir / "arm.json").read_text())
    device = pick_device("auto")
    cfg = Config(model=_fill(ModelConfig, "model", spec["model"], spec["name"]),
                 train=_fill(TrainConfig, "train", spec["train"], spec["name"]))
    t0 = time.time()
    inh = spec.get("inherit")
    if inh and not Path(cfg.train.init_from).exists():
        parent = model_from_checkpoint(load_checkpoint(inh["parent_ckpt"]), inh["parent_ckpt"])
        batches = calibration_batches(inh["parent_data"], inh.get("seq_len", 512), inh.get("batch_size", 8),
                                      inh.get("calib_batches", 8), cfg.train.seed)
        student, info = inherit(parent, cfg.model, json.loads(Path(inh["vocab_map"]).read_text()), batches,
                                inh["layers"], inh["width"], inh.get("first"), device=device,
                                mask_steps=inh.get("mask_steps", 200))
        save_atomic(weights_only(student, {"inherited": info}), cfg.train.init_from)
    inherit_s = time.time() - t0
    final = train(cfg)
    train_s = time.time() - t0 - inherit_s
    ckpt = load_checkpoint(final)
    model = model_from_checkpoint(ckpt, str(final)).to(device)
    ev = spec["eval"]
    batch = 64 if cfg.model.vocab_size <= 16384 else 8
    validation = bits_per_byte(model, TokenSplit(ev["data"], "val"), token_byte_lengths(ev["tokenizer"]),
                               seq_len=cfg.train.seq_len, limit_tokens=ev.get("limit_tokens", 0), batch_size=batch,
                               device=device)
    result = {"ok": True, "name": spec["name"], "arm": spec["arm"], "vocab": spec["vocab"],
              "params": model.num_params(), "params_non_embedding": model.num_params(embedding=False),
              "tokens": ckpt.get("tokens_seen"), "val_loss": validation["val_loss"],
              "bits_per_byte": validation["bits_per_byte"], "inherit_s": inherit_s, "train_s": train_s,
              "branched_from": spec.get("branched_from")}
    write = lambda: (run_dir / "result.json").write_text(json.dumps({**result, "wall_s": time.time() - t0}, indent=2))
    write()  # the arm's weights and validation are in: a budget that ends during zero-shot scoring keeps them
    if ev.get("tasks") and Path(ev["tasks"]).exists():
        tasks = json.loads(Path(ev["tasks"]).read_text())
        result["zero_shot"] = zero_shot(model, tasks, ev.get("limit", 0), device)
        write()
    return {**result, "wall_s": time.time() - t0}


# ---- speed probe and budget -----------------------------------------------------------------------

def probe(study: dict, steps: int = 5) -> dict[str, float]:
    """Training tokens/s of each (shape, vocab) used, measured alone on random tokens."""
    device = pick_device("auto")
    rates = {}
    for inst in instances(study).values():
        if "branch" in inst or f"{inst['shape']}/{inst['vocab']}" in rates:
            continue
        tc = _fill(TrainConfig, "train", base_train(study, inst), "probe")
        model = TinyLM(_fill(ModelConfig, "model", study["shape"][inst["shape"]], "probe")).to(device)
        opt, autocast = make_optimizer(model, tc, device), make_autocast(device, tc.dtype)
        x = torch.randint(0, model.config.vocab_size, (tc.batch_size, tc.seq_len + 1), device=device)
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
        rates[f"{inst['shape']}/{inst['vocab']}"] = steps * tokens_per_step(vars(tc)) / (time.time() - t0)
        del model, opt
        if device == "cuda":
            torch.cuda.empty_cache()
    return rates


def estimate_s(study: dict, rates: dict, scale: float) -> float:
    """GPU seconds of the whole plan if the arms ran one after another (a safe upper bound)."""
    total, insts = 0.0, instances(study)
    per_arm = study["study"].get("overhead_s", 10)
    for inst in insts.values():
        if "branch" in inst:
            base = insts[inst["branch"][0]]
            secs = scale * base["tokens"] / rates[f"{base['shape']}/{base['vocab']}"]
            frac = {**study["train"], **inst.get("train", {})}.get("round_fraction", 0.5)
            total += secs * (frac + 0.35) + per_arm
        else:
            total += scale * inst["tokens"] / rates[f"{inst['shape']}/{inst['vocab']}"] + per_arm
    return total


# ---- the driver -----------------------------------------------------------------------------------

def readiness(name: str, insts: dict, done: dict) -> str | None:
    """None when the arm can start now; "wait" while an arm it needs runs; otherwise why it cannot run."""
    inst = insts[name]
    deps = needs(inst)
    if any(d not in insts for d in deps) or ("branch" in inst and not deps):
        return f"needs {deps}, not in this run"
    if not all(d in done for d in deps):
        return "wait"
    ok = [d for d in deps if done[d].get("ok")]
    enough = bool(ok) if "branch" in inst else len(ok) == len(deps)  # a branch needs one candidate
    return None if enough else f"the arms it needs failed: {deps}"


def launch(study: dict, name: str, inst: dict, out: Path, scale: float, done: dict) -> subprocess.Popen:
    spec = resolve(study, name, inst, out, scale, done)
    (out / name).mkdir(parents=True, exist_ok=True)
    (out / name / "arm.json").write_text(json.dumps(spec, indent=2))
    with open(out / name / "stdout.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "scripts.tinylm.study", "arm", str(out / name)],
                                stdout=log, stderr=subprocess.STDOUT)


def run(study_path: str | dict, budget_s: float, only: list[str] | None = None, scale: float | None = None,
        tokens: dict[str, float] | None = None, parallel: int | None = None, zero_shot_eval: bool = True,
        out_dir: str | None = None) -> dict:
    """Run the study. only: these arm instances; scale: a fixed token scale (skips the probe);
    tokens: arm → tokens overrides. Arms that outlive budget_s are stopped (0: no limit)."""
    t_start = time.time()
    study = load_study(study_path)
    for arm, n in (tokens or {}).items():
        study["arm"][arm]["tokens"] = n
    if out_dir:
        study["study"]["out_dir"] = out_dir
    if not zero_shot_eval:
        for vocab in study["vocab"].values():
            vocab["tasks"] = ""
    out = Path(study["study"]["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    insts = instances(study)
    if only:
        insts = {k: v for k, v in insts.items() if k in only}
        for v in insts.values():  # a branch chooses among the candidates that run
            if "branch" in v:
                v["branch"] = [c for c in v["branch"] if c in insts]
    rates = {}
    if scale is None:
        rates = probe(study)
        avail = budget_s - (time.time() - t_start) - study["study"].get("reserve_s", 30)
        scale = min(1.0, avail / estimate_s(study, rates, 1.0)) if budget_s > 0 else 1.0
        print(f"probe tokens/s {json.dumps({k: round(v) for k, v in rates.items()})}; plan ~{estimate_s(study, rates, 1.0):.0f} s "
              f"sequential for {avail:.0f} s available: token scale {scale:.2f}", file=sys.stderr, flush=True)
    done = {n: json.loads((out / n / "result.json").read_text())  # finished earlier: a rerun goes on from there
            for n in insts if (out / n / "result.json").exists()}
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    parallel = parallel or study["study"].get("parallel", 4)
    deadline = t_start + budget_s if budget_s > 0 else math.inf
    order = sorted(insts, key=lambda n: -int(any(n in needs(i) for i in insts.values())))  # parents first
    while running or any(n not in done for n in insts):
        for name, (proc, started) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            result_path = out / name / "result.json"
            done[name] = json.loads(result_path.read_text()) if proc.returncode == 0 and result_path.exists() \
                else {"ok": False, "error": f"exit {proc.returncode} (see {name}/stdout.log)"}
            done[name]["elapsed_s"] = time.time() - started
            print(f"[{time.time() - t_start:5.0f} s] {name}: {json.dumps({k: done[name].get(k) for k in ('ok', 'val_loss', 'bits_per_byte', 'error')})}",
                  file=sys.stderr, flush=True)
        for name in order:
            if name in done or name in running or len(running) >= parallel:
                continue
            why = readiness(name, insts, done)
            if why is None:
                running[name] = (launch(study, name, insts[name], out, scale, done), time.time())
            elif why != "wait":
                done[name] = {"ok": False, "error": why}
        if time.time() > deadline:
            for name, (proc, started) in running.items():
                proc.kill()
                done[name] = {"ok": False, "error": "stopped at the time budget", "elapsed_s": time.time() - started}
            running.clear()
            for name in insts:
                done.setdefault(name, {"ok": False, "error": "not started: time budget spent"})
        time.sleep(0.5 if running else 0)
    summary = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
               "torch": torch.__version__, "probe_tokens_per_s": rates, "token_scale": scale,
               "wall_s": time.time() - t_start, "arms": done}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    return summary


# ---- bringing results back ------------------------------------------------------------------------

def shipped(study: dict, results: dict) -> str | None:
    return next((a for a in study["study"].get("ship", []) if results["arms"].get(a, {}).get("ok")), None)


def collect(study_path: str | dict, dest: Path, part_mb: int = 15) -> None:
    """results + configs + logs (+ plots) as one tar.xz, and the shipped arm's final.pt in ≤ part_mb parts."""
    study = load_study(study_path)
    out = Path(study["study"]["out_dir"])
    dest.mkdir(parents=True, exist_ok=True)
    results = json.loads((out / "results.json").read_text())
    with tarfile.open(dest / "study.tar.xz", "w:xz") as tar:
        for f in sorted(out.rglob("*")):
            if f.is_file() and f.suffix in (".json", ".jsonl", ".log", ".png", ".md"):
                tar.add(f, arcname=str(f.relative_to(out.parent)))
    ship = shipped(study, results)
    if ship:
        data = (out / ship / "final.pt").read_bytes()
        step = part_mb * 2**20
        for k in range(0, len(data), step):
            (dest / f"shipped.pt.part{k // step}").write_bytes(data[k:k + step])
        print(f"shipped arm {ship}: {len(data) / 2**20:.1f} MiB in {math.ceil(len(data) / step)} parts", file=sys.stderr)


# ---- the report -----------------------------------------------------------------------------------

def mean_spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{sum(values) / len(values):.4f} ± {(max(values) - min(values)) / 2:.4f}"


def report(study_path: str | dict) -> str:
    study = load_study(study_path)
    out = Path(study["study"]["out_dir"])
    results = json.loads((out / "results.json").read_text())
    arms = results["arms"]
    lines = [f"Device: {results['device']}, torch {results['torch']}; token scale {results['token_scale']:.2f}; "
             f"whole study {results['wall_s'] / 60:.1f} min.", ""]
    for table in study.get("table", []):
        lines += [f"### {table['title']}", "", "| arm | params | tokens | val loss | bits/byte | "
                  + " | ".join(TASK_COLUMNS) + " | zero-shot avg | train s |",
                  "|---" * (7 + len(TASK_COLUMNS)) + "|"]
        for arm in table["arms"]:
            runs = [r for n, r in arms.items() if (n == arm or n.startswith(arm + "@")) and r.get("ok")]
            if not runs:
                lines.append(f"| {arm} | failed: {arms.get(arm, {}).get('error', 'not run')} |")
                continue
            zs = [r.get("zero_shot", {}) for r in runs]
            cells = [mean_spread([z[t]["acc"] for z in zs]) if all(t in z for z in zs) else "–" for t in TASK_COLUMNS]
            avg = mean_spread([z["average"]["acc"] for z in zs]) if all("average" in z for z in zs) else "–"
            label = study["arm"][arm].get("describe", arm) + (f" (from {runs[0]['branched_from']})" if runs[0].get("branched_from") else "")
            seeds = f" ×{len(runs)} seeds" if len(runs) > 1 else ""
            lines.append(f"| {label}{seeds} | {runs[0]['params'] / 1e6:.2f}M | {runs[0]['tokens'] / 1e6:.1f}M | "
                         f"{mean_spread([r['val_loss'] for r in runs])} | {mean_spread([r['bits_per_byte'] for r in runs])} | "
                         + " | ".join(cells) + f" | {avg} | {sum(r['train_s'] for r in runs) / len(runs):.0f} |")
        lines.append("")
    return "\n".join(lines)


def plot(study_path: str, dest: Path) -> None:
    """Validation loss against tokens, one PNG per table (needs matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    study = load_study(study_path)
    out = Path(study["study"]["out_dir"])
    dest.mkdir(parents=True, exist_ok=True)
    for k, table in enumerate(study.get("table", [])):
        fig, ax = plt.subplots(figsize=(6, 4))
        for arm in table["arms"]:
            log = out / arm / "log.jsonl"
            if not log.exists():
                continue
            points = [json.loads(line) for line in log.read_text().splitlines()]
            points = [(p["tokens"] / 1e6, p["val_loss"]) for p in points if "val_loss" in p]
            if points:
                ax.plot(*zip(*points), marker=".", label=study["arm"][arm].get("describe", arm))
        ax.set_xlabel("training tokens (M)")
        ax.set_ylabel("validation loss (nats/token)")
        ax.set_title(table["title"], fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(dest / f"{table.get('plot', f'table{k}')}.png", dpi=110)
        plt.close(fig)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("study")
    r.add_argument("--budget-s", type=float, default=0, help="wall-clock budget (0: no limit, no scaling)")
    r.add_argument("--only", nargs="*", help="run only these arms (and nothing they need that is missing)")
    r.add_argument("--scale", type=float, default=None, help="fixed token scale (skips the speed probe)")
    r.add_argument("--tokens", nargs="*", default=[], help="ARM=TOKENS overrides")
    r.add_argument("--parallel", type=int, default=None, help="arms at a time (default: the config's)")
    r.add_argument("--no-zero-shot", action="store_true", help="validation only (zero-shot evaluated elsewhere)")
    r.add_argument("--out-dir", default=None)
    a = sub.add_parser("arm")
    a.add_argument("run_dir")
    c = sub.add_parser("collect")
    c.add_argument("study")
    c.add_argument("dest")
    p = sub.add_parser("report")
    p.add_argument("study")
    p.add_argument("--plots", default="", help="also draw the loss curves (PNG) into this folder")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "run":
            summary = run(args.study, args.budget_s, args.only, args.scale,
                          {k: float(v) for k, v in (t.split("=", 1) for t in args.tokens)}, args.parallel,
                          not args.no_zero_shot, args.out_dir)
            print(json.dumps({k: {"ok": v.get("ok"), "bits_per_byte": v.get("bits_per_byte"), "error": v.get("error")}
                              for k, v in summary["arms"].items()}, indent=1))
        elif args.cmd == "arm":
            run_arm(Path(args.run_dir))
        elif args.cmd == "collect":
            collect(args.study, Path(args.dest))
        else:
            if args.plots:
                plot(args.study, Path(args.plots))
            print(report(args.study))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from .cpu import tune_malloc

    tune_malloc()  # before torch allocates: see cpu.py
    sys.exit(main(sys.argv[1:]))
