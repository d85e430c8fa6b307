"""The whole recipe from one config: parent → inheritance → multi-round student → evaluation.
Each stage is skipped when its output exists, so an interrupted recipe picks up where it stopped.

    /usr/bin/python3 -m scripts.tinylm.recipe configs/tiny-recipe.toml
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .config import Config, ConfigError, ModelConfig, TrainConfig, _fill, read_toml
from .data import DataError
from .inherit import inherit_student
from .stage import evaluate_model
from .train import train


def load_recipe(path: str | Path) -> dict:
    path = Path(path)
    data = read_toml(path)
    for key in ("paths", "parent", "student", "inherit"):
        if key not in data:
            raise ConfigError(f"{path}: missing [{key}] table")
    for key in ("out_dir", "parent_data", "student_data", "tokenizer"):
        if key not in data["paths"]:
            raise ConfigError(f"{path}: missing paths.{key}")
    return data


def stage_config(recipe: dict, name: str, data_dir: str, out_dir: Path, source: str, **extra) -> Config:
    section = recipe[name]
    model = _fill(ModelConfig, f"{name}.model", section.get("model", {}), source)
    tc = _fill(TrainConfig, f"{name}.train", {**section.get("train", {}), "data_dir": data_dir, "out_dir": str(out_dir), **extra}, source)
    return Config(model=model, train=tc)


def run(recipe_path: str) -> dict:
    recipe = load_recipe(recipe_path)
    paths = recipe["paths"]
    out = Path(paths["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    timings = {}

    t0 = time.time()
    parent_cfg = stage_config(recipe, "parent", paths["parent_data"], out / "parent", recipe_path)
    parent_final = out / "parent" / "final.pt"
    if not parent_final.exists():
        print("== parent", file=sys.stderr)
        train(parent_cfg)
    timings["parent_s"] = time.time() - t0

    t0 = time.time()
    student_init = out / "student-init.pt"
    student_cfg = stage_config(recipe, "student", paths["student_data"], out / "student", recipe_path,
                               init_from=str(student_init))
    if not student_init.exists():
        print("== inherit", file=sys.stderr)
        inherit_student(parent_final, paths["parent_data"], Path(paths["tokenizer"]) / "vocab_map.json", student_cfg.model,
                        student_init, {"seq_len": 128, **recipe["inherit"]}, student_cfg.train.seed)
    timings["inherit_s"] = time.time() - t0

    t0 = time.time()
    student_final = out / "student" / "final.pt"
    if not student_final.exists():
        print("== student", file=sys.stderr)
        train(student_cfg)
    timings["student_s"] = time.time() - t0

    results_path = out / "eval.json"
    if results_path.exists():
        return json.loads(results_path.read_text())
    print("== eval", file=sys.stderr)
    ev = recipe.get("eval", {})
    student = model_from_checkpoint(load_checkpoint(student_final), str(student_final))
    results = {
        **evaluate_model(student, paths["student_data"], paths["tokenizer"], student_cfg.train.seq_len, ev.get("limit_tokens", 0),
                         paths.get("eval_tasks"), ev.get("limit", 0)),
        "timings": timings,
        "tokens": {"parent": load_checkpoint(parent_final).get("tokens_seen"), "student": load_checkpoint(student_final).get("tokens_seen")},
    }
    results_path.write_text(json.dumps(results, indent=2))
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m scripts.tinylm.recipe",
                                     description="The whole recipe from a TOML file: parent, inherited student, rounds, evaluation.")
    parser.add_argument("recipe", help="the recipe's TOML file (configs/tiny-recipe.toml)")
    args = parser.parse_args(argv)
    try:
        results = run(args.recipe)
    except (ConfigError, DataError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    from .cpu import tune_malloc

    tune_malloc()  # before torch allocates: see cpu.py
    sys.exit(main(sys.argv[1:]))
