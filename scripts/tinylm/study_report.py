"""The study's results brought back (results, configs, logs and the shipped weights in parts that fit
the 16 MiB return limit) and reported as the markdown tables and plots of docs/ablations.md."""
from __future__ import annotations

import io
import json
import math
import sys
import tarfile
from pathlib import Path

import torch

from .config import ConfigError
from .study_plan import load_study

TASK_COLUMNS = ("lambada_openai", "arc_easy", "arc_challenge", "piqa", "openbook_qa", "winogrande")


# ---- bringing results back ------------------------------------------------------------------------

def shipped(study: dict, results: dict, out: Path) -> tuple[str, Path] | None:
    """The arm to bring back and its weights: the first of [study] ship that finished (final.pt), else
    the first that left a checkpoint (stopped by the time budget, or killed: its last ckpt.pt)."""
    ship = study["study"].get("ship", [])
    for arm in ship:
        if results["arms"].get(arm, {}).get("ok") and (out / arm / "final.pt").exists():
            return arm, out / arm / "final.pt"
    for arm in ship:  # final.pt is written only once training is over: then it is the newest
        for name in ("final.pt", "ckpt.pt"):
            if (out / arm / name).exists():
                return arm, out / arm / name
    return None


def bf16_checkpoint(path: Path) -> tuple[bytes, dict]:
    """A weights-only checkpoint with its float tensors in bfloat16: half the bytes to bring back
    (loading it into a model converts back to float32; the training run itself was bf16 autocast).
    A resumable ckpt.pt loses its optimizer and RNG state. Returns the bytes and what else it holds."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    ckpt = {k: v for k, v in ckpt.items() if k not in ("optimizer", "rng")}
    ckpt["model"] = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue(), {k: v for k, v in ckpt.items() if k in ("step", "round", "tokens_seen", "done", "val_loss")}


def collect(study_path: str | dict, dest: Path, part_mb: int = 15) -> None:
    """results + configs + logs (+ plots) as one tar.xz, and the shipped arm's weights (bf16) in ≤ part_mb
    parts, with shipped.json saying which file they came from. Works on whatever a run left, finished
    or not (no results.json: the run's driver did not get to write it)."""
    study = load_study(study_path)
    out = Path(study["study"]["out_dir"])
    dest.mkdir(parents=True, exist_ok=True)
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {"arms": {}}
    with tarfile.open(dest / "study.tar.xz", "w:xz") as tar:
        for f in sorted(out.rglob("*")):
            if f.is_file() and f.suffix in (".json", ".jsonl", ".log", ".png", ".md"):
                tar.add(f, arcname=str(f.relative_to(out.parent)))
    ship = shipped(study, results, out)
    if ship:
        arm, path = ship
        data, meta = bf16_checkpoint(path)
        step = part_mb * 2**20
        for k in range(0, len(data), step):
            (dest / f"shipped.pt.part{k // step}").write_bytes(data[k:k + step])
        info = {"arm": arm, "from": path.name, "finished": bool(results["arms"].get(arm, {}).get("ok")), **meta}
        (dest / "shipped.json").write_text(json.dumps(info, indent=1))
        print(f"shipped {json.dumps(info)}: {len(data) / 2**20:.1f} MiB in {math.ceil(len(data) / step)} parts", file=sys.stderr)


def score(dest: Path, data: str, tokenizer: str, tasks: str | None = None, seq_len: int = 512, limit: int = 0) -> dict:
    """Back on the CPU: the shipped weights reassembled from their parts, scored on all the held-out
    text and the zero-shot tasks (the GPU's minutes go to training; --no-zero-shot and eval_tokens
    keep its own evaluation short). Writes dest/score.json."""
    from .checkpoint import model_from_checkpoint
    from .stage import evaluate_model

    parts = sorted(dest.glob("shipped.pt.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    if not parts:
        raise ConfigError(f"{dest}: no shipped.pt.part* files (collect writes them)")
    ckpt = torch.load(io.BytesIO(b"".join(p.read_bytes() for p in parts)), map_location="cpu")
    model = model_from_checkpoint(ckpt, str(dest / "shipped.pt")).float()
    result = evaluate_model(model, data, tokenizer, seq_len, tasks=tasks, task_limit=limit)
    (dest / "score.json").write_text(json.dumps(result, indent=2))
    return result


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
