import json
import shutil
import subprocess
import sys

import torch

from scripts.tinylm.checkpoint import save_atomic, weights_only
from scripts.tinylm.model import TinyLM
from .conftest import ROOT, TINY_TOKENIZER, tiny_model_config


def run_export(*args):
    return subprocess.run([sys.executable, "-m", "scripts.tinylm.export", *map(str, args)], cwd=ROOT, capture_output=True, text=True)


def test_vocabulary_mismatch_is_named_and_nothing_is_written(tmp_path):
    ckpt = tmp_path / "small.pt"
    save_atomic(weights_only(TinyLM(tiny_model_config(vocab_size=500))), ckpt)
    out = tmp_path / "model"
    r = run_export(ckpt, TINY_TOKENIZER, out)
    assert r.returncode == 1
    assert "vocabulary mismatch: tokenizer" in r.stderr and "has 8192 tokens" in r.stderr and "has 500" in r.stderr
    assert not out.exists() and not (tmp_path / "model.export-tmp").exists()


def test_missing_tensor_and_missing_tokenizer_are_clear_errors(tmp_path):
    model = TinyLM(tiny_model_config())
    state = weights_only(model)
    del state["model"]["layers.0.mlp.up_proj.weight"]
    ckpt = tmp_path / "broken.pt"
    torch.save(state, ckpt)
    r = run_export(ckpt, TINY_TOKENIZER, tmp_path / "m")
    assert r.returncode == 1 and "layers.0.mlp.up_proj.weight" in r.stderr
    good = tmp_path / "good.pt"
    save_atomic(weights_only(model), good)
    r = run_export(good, tmp_path / "no-tokenizer", tmp_path / "m")
    assert r.returncode == 1 and "cannot read tokenizer.json" in r.stderr


def test_export_writes_the_folder_with_a_manifest(tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "m.pt"
    save_atomic(weights_only(TinyLM(tiny_model_config(n_layers=1))), ckpt)
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("replaced whole")
    r = run_export(ckpt, TINY_TOKENIZER, out, "--name", "t")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == "t" and manifest["vocabulary"]["size"] == 8192
    for rel in ("config.json", "tokenizer.json", "onnx/model.onnx", "onnx/model_quantized.onnx", "parity/cases.json"):
        assert rel in manifest["files"] and len(manifest["files"][rel]["sha256"]) == 64
    assert not (out / "stale.txt").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_key_value_heads"] == 2
    assert (out / "onnx" / "model_quantized.onnx").stat().st_size < (out / "onnx" / "model.onnx").stat().st_size / 2
    shutil.rmtree(out)
