"""The ablation study (PanGu-π Pro's four formulas at small scale) and the shipped model, in one run.

Each arm of configs/study.toml is one training run (optionally inherited from another arm, or
branched from a finished arm into a second round), trained and evaluated in its own process. Arms
run concurrently on one GPU as soon as the arms they need are done. Each shape's training speed is
what training logged (study_budget.py; a short probe measures a shape never logged); if the arms to
run would not fit in --budget-s, every arm's token count is scaled down by the same factor
(comparisons stay at equal tokens).

    python3 -m scripts.tinylm.study run configs/study.toml --budget-s 420
    python3 -m scripts.tinylm.study collect runs/study OUT_DIR     # results + logs + shipped weights
    /usr/bin/python3 -m scripts.tinylm.study report runs/study     # markdown tables (docs/ablations.md)
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, model_from_checkpoint
from .config import Config, ConfigError, ModelConfig, TrainConfig, _fill
from .evaluate import zero_shot
from .inherit import inherit_student
from .stage import evaluate_model
from .study_budget import arm_estimate_s, estimate_s, fitting_scale, logged_rates, probe, rate_key
from .study_plan import base_train, instances, load_study, needs, resolve
from .study_report import collect, plot, report, score
from .train import pick_device, train



# ---- one arm (in its own process) -----------------------------------------------------------------

def run_arm(run_dir: Path) -> dict:
    spec = json.loads((run_dir / "arm.json").read_text())
    device = pick_device("auto")
    cfg = Config(model=_fill(ModelConfig, "model", spec["model"], spec["name"]),
                 train=_fill(TrainConfig, "train", spec["train"], spec["name"]))
    t0 = time.time()
    inh = spec.get("inherit")
    if inh and not Path(cfg.train.init_from).exists():
        inherit_student(inh["parent_ckpt"], inh["parent_data"], inh["vocab_map"], cfg.model, cfg.train.init_from,
                        {"seq_len": 512, **inh}, cfg.train.seed, device)
    inherit_s = time.time() - t0
    final = train(cfg)
    train_s = time.time() - t0 - inherit_s
    ckpt = load_checkpoint(final)
    model = model_from_checkpoint(ckpt, str(final)).to(device)
    ev = spec["eval"]
    batch = 64 if cfg.model.vocab_size <= 16384 else 8
    validation = evaluate_model(model, ev["data"], ev["tokenizer"], cfg.train.seq_len, ev.get("limit_tokens", 0),
                                device=device, batch_size=batch)["validation"]
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
        out_dir: str | None = None, rates: dict[str, float] | None = None) -> dict:
    """Run the study. only: these arm instances; scale: a fixed token scale (no rates are looked up);
    tokens: arm → tokens overrides; rates: tokens/s per shape/vocab that override the logged ones.
    An arm that cannot finish before budget_s runs out (estimated from the rates) is skipped; one that
    outlives it anyway is stopped (0: no limit)."""
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
    done = {n: json.loads((out / n / "result.json").read_text())  # finished earlier: a rerun goes on from there
            for n in insts if (out / n / "result.json").exists()}
    todo = {n: v for n, v in insts.items() if n not in done}  # what the probe measures and the budget plans
    rates = dict(rates or {})  # tokens/s per shape/vocab: as training logged them, else probed, unless given
    multipliers: dict[str, int] = {}
    probed: dict[str, float] = {}
    if scale is None:
        rates = {**logged_rates(study, todo, done, out), **rates}
        unknown = {n: v for n, v in todo.items() if rate_key(study, v) not in rates}
        if unknown:
            probed, multipliers = probe(study, todo=unknown, cache=out / "probe.json")
        rates.update({k: v * study["study"].get("probe_discount", 1.0) for k, v in probed.items()})
        for inst in insts.values():  # the probe's batch size for each shape (branches copy their base's)
            m = multipliers.get(f"{inst.get('shape')}/{inst.get('vocab')}", 1)
            if m > 1 and "branch" not in inst:
                inst["train"] = {**inst.get("train", {}), "batch_size": base_train(study, inst)["batch_size"] * m}
        avail = budget_s - (time.time() - t_start) - study["study"].get("reserve_s", 30)
        plan_s = estimate_s(study, rates, 1.0, todo, done)
        scale = fitting_scale(study, rates, avail, todo, done) if budget_s > 0 else 1.0
        print(f"tokens/s {json.dumps({k: round(v) for k, v in rates.items()})} (probed: {sorted(probed)}); "
              f"plan ~{plan_s:.0f} s sequential for {avail:.0f} s available: token scale {scale:.2f}",
              file=sys.stderr, flush=True)
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
            # Deadline-aware: an arm that cannot finish in the time left is skipped, not started and killed.
            need = arm_estimate_s(study, insts[name], rates, scale, done) if rates and why is None else 0.0
            if why is None and time.time() + need > deadline:
                done[name] = {"ok": False, "error": f"skipped: needs ~{need:.0f} s, {deadline - time.time():.0f} s left"}
            elif why is None:
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
               "torch": torch.__version__, "tokens_per_s": rates, "probed": sorted(probed), "batch_multipliers": multipliers, "token_scale": scale,
               "wall_s": time.time() - t_start, "arms": done}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    return summary


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
    sc = sub.add_parser("score", help="score the collected shipped weights on this (CPU) machine")
    sc.add_argument("dest", help="the folder collect wrote (shipped.pt.part*)")
    sc.add_argument("--data", required=True, help="pre-tokenized data (its val split is scored)")
    sc.add_argument("--tokenizer", required=True)
    sc.add_argument("--tasks", default=None, help="zero-shot tasks (encode-evals output)")
    sc.add_argument("--seq-len", type=int, default=512)
    sc.add_argument("--limit", type=int, default=0, help="examples per task (0: all)")
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
        elif args.cmd == "score":
            print(json.dumps(score(Path(args.dest), args.data, args.tokenizer, args.tasks, args.seq_len, args.limit), indent=1))
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
