"""A dry run of scripts/model-v2-on-gpu.sh, the very script a GPU task runs, at a tiny scale on the CPU.

It runs in a folder that holds only what the GPU machine is sure to have (the repository's scripts
and configs, and build/gpu), with a build/gpu packed from the committed fixtures. The parent shards
travel as they are (pack --parent-shards: this machine has neither `tokenizers` nor `tiktoken` to
rebuild them); the config is configs/model-v2.toml with toy shapes and batch sizes."""
import io
import json
import os
import subprocess
import sys
import tarfile
import tomllib

import torch

from scripts.tinylm import travel
from scripts.tinylm.checkpoint import model_from_checkpoint
from .conftest import ROOT
from .test_study import TINY_SHAPES

FIX = ROOT / "test" / "fixtures"


def tiny_config() -> dict:
    study = tomllib.loads((ROOT / "configs" / "model-v2.toml").read_text())
    study["shape"] = {k: TINY_SHAPES[k] for k in study["shape"]}
    study["study"]["eval_tokens"] = 2048
    # As on the H200, the plan comes from logged rates (here: roughly these shapes' on 2 vCPUs), not a probe.
    study["study"]["logged_tokens_per_s"] = {"cpu": {"parent/parent": 200.0, "student/compact": 4000.0}}
    study["vocab"]["parent"]["train"] = {"batch_size": 4, "grad_accum": 2}
    study["train"].update(seq_len=32, batch_size=8, eval_batches=2, log_interval=2,
                          device=os.environ.get("TINYLM_TEST_DEVICE", "cpu"), threads=1)
    study["arm"]["inherit-taylor"]["inherit"].update(seq_len=32, batch_size=4, calib_batches=2)
    return study


def test_the_gpu_script_runs_whole_at_a_tiny_scale(tmp_path):
    repo, out = tmp_path / "repo", tmp_path / "OUT"
    repo.mkdir()
    for name in ("scripts", "configs"):
        (repo / name).symlink_to(ROOT / name)
    travel.pack(repo / "build" / "gpu", FIX / "shards-8k-tiny", FIX / "tiny-model", FIX / "shards-parent-tiny", [],
                train_tokens=10**9, parent_shards=True, parent_tokenizer=ROOT / travel.PARENT_TOKENIZER)
    (repo / "tiny.json").write_text(json.dumps(tiny_config()))
    cmd = ["bash", "scripts/model-v2-on-gpu.sh", str(out), "--config", "tiny.json", "--tokens", "4096",
           "--parent-tokens", "1024", "--total-s", "300"]
    run = subprocess.run(cmd, cwd=repo, env={**os.environ, "PYTHON": sys.executable}, capture_output=True,
                         text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    files = sorted(p.name for p in out.iterdir())
    assert files == ["shipped.json", "shipped.pt.part0", "study.log", "study.tar.xz", "unpack.log"]
    assert all((out / f).stat().st_size <= 16 * 2**20 for f in files)
    shipped = json.loads((out / "shipped.json").read_text())
    assert shipped["arm"] == "inherit-taylor" and shipped["from"] == "final.pt" and shipped["finished"]
    assert shipped["tokens_seen"] == 4096  # 16 steps of 8 × 32: the token scale stayed 1
    ckpt = torch.load(io.BytesIO((out / "shipped.pt.part0").read_bytes()))
    model_from_checkpoint(ckpt)  # loads as it comes back

    with tarfile.open(out / "study.tar.xz") as tar:
        names = tar.getnames()
        spec = json.load(tar.extractfile("model-v2/inherit-taylor/arm.json"))
        results = json.load(tar.extractfile("model-v2/results.json"))
    assert "model-v2/parent/log.jsonl" in names and "model-v2/inherit-taylor/log.jsonl" in names
    assert results["arms"]["parent"]["ok"] and results["token_scale"] == 1.0 and results["probed"] == []
    train = spec["train"]  # the shipped recipe, as configs/model-v2.toml states it
    assert (train["lr"], train["min_lr"], train["weight_decay"], train["beta2"], train["grad_clip"]) == (3e-3, 3e-4, 0.1, 0.95, 1.0)
    assert train["batch_grouping"] == "shuffled" and train["checkpoint_interval"] == train["eval_interval"] == 500
    assert spec["inherit"]["layers"] == "first_last" and spec["inherit"]["width"] == "taylor"
    assert spec["eval"]["tasks"] == ""  # --no-zero-shot: scored back on the CPU

    # A second call (the machine still warm) unpacks nothing and trains nothing again.
    again = subprocess.run(cmd, cwd=repo, env={**os.environ, "PYTHON": sys.executable}, capture_output=True,
                           text=True, timeout=400)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert "already_unpacked" in (out / "unpack.log").read_text()
    assert json.loads((out / "shipped.json").read_text()) == shipped
