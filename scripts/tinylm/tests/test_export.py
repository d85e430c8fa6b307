import hashlib
import json
import shutil
import subprocess
import sys

import onnx
import torch
from onnx import numpy_helper

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


def assert_manifest_lists_the_folder(folder, manifest):
    """Every file as it is now, but the manifest itself and the two written after an export."""
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {"manifest.json", "MODEL_CARD.md", "loss-curve.svg"}
    assert set(manifest["files"]) == present
    for rel, entry in manifest["files"].items():
        assert entry == {"bytes": (folder / rel).stat().st_size, "sha256": hashlib.sha256((folder / rel).read_bytes()).hexdigest()}


def test_export_writes_the_folder_with_a_manifest(tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "m.pt"
    save_atomic(weights_only(TinyLM(tiny_model_config(n_layers=1))), ckpt)
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("replaced whole")
    (out / "MODEL_CARD.md").write_text("kept, and edited after an export: not hashed")
    r = run_export(ckpt, TINY_TOKENIZER, out, "--name", "t")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert_manifest_lists_the_folder(out, manifest)
    assert (out / "MODEL_CARD.md").exists() and ".assetsignore" in manifest["files"]
    assert manifest["name"] == "t" and manifest["vocabulary"]["size"] == 8192
    for rel in ("config.json", "tokenizer.json", "onnx/model.onnx", "onnx/model_quantized.onnx", "parity/cases.json"):
        assert rel in manifest["files"] and len(manifest["files"][rel]["sha256"]) == 64
    assert not (out / "stale.txt").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_key_value_heads"] == 2
    assert (out / "onnx" / "model_quantized.onnx").stat().st_size < (out / "onnx" / "model.onnx").stat().st_size / 2
    shutil.rmtree(out)


def test_export_writes_both_contracts_sharing_one_copy_of_the_weights(tmp_path):
    from scripts.tinylm.interop import relayout

    torch.manual_seed(0)
    ckpt = tmp_path / "m.pt"
    save_atomic(weights_only(TinyLM(tiny_model_config(n_layers=2))), ckpt)
    out = tmp_path / "model"
    assert run_export(ckpt, TINY_TOKENIZER, out).returncode == 0
    for name in ("model", "model_quantized"):
        standard = onnx.load(str(out / "onnx" / f"{name}.onnx"))
        assert [i.name for i in standard.graph.input] == ["input_ids", "attention_mask", "position_ids"] + [
            f"past_key_values.{i}.{kv}" for i in range(2) for kv in ("key", "value")]
        assert [o.name for o in standard.graph.output] == ["logits"] + [f"present.{i}.{kv}" for i in range(2) for kv in ("key", "value")]
        fast_file = out / "onnx" / f"{name}.tinylm.onnx"
        fast = onnx.load(str(fast_file), load_external_data=False)
        assert [o.name for o in fast.graph.output] == ["logits", "probs", "new_kv"]
        # Every large initializer of ours is the standard graph's bytes, read in place.
        external = [t for t in fast.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        assert len(external) >= 5 and fast_file.stat().st_size < 40_000
        blob = (out / "onnx" / f"{name}.onnx").read_bytes()
        inline = {t.name: numpy_helper.to_array(t).tobytes() for t in standard.graph.initializer}
        for t in external:
            meta = {e.key: e.value for e in t.external_data}
            assert meta["location"] == f"{name}.onnx"
            start, length = int(meta["offset"]), int(meta["length"])
            assert blob[start:start + length] == inline[t.name]
    config = json.loads((out / "config.json").read_text())
    assert config["transformers.js_config"] == {"dtype": "q8"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert "onnx/model_quantized.tinylm.onnx" in manifest["files"]
    before = {p: p.read_bytes() for p in (out / "onnx").iterdir()}
    assert relayout(out) == [] and before == {p: p.read_bytes() for p in (out / "onnx").iterdir()}  # idempotent
    for dropped in ("model.onnx", "model.tinylm.onnx"):  # as npm run export -- --drop-fp32 does
        (out / "onnx" / dropped).unlink()
    relayout(out)
    assert_manifest_lists_the_folder(out, json.loads((out / "manifest.json").read_text()))  # fp32 no longer listed


def test_a_split_stopped_between_its_two_renames_is_finished_by_the_next(tmp_path, monkeypatch):
    import pytest
    from scripts.tinylm import interop
    from scripts.tinylm.onnx_graph import build_graph

    torch.manual_seed(0)
    graph = build_graph(TinyLM(tiny_model_config(n_layers=1)).eval())
    for name in ("straight", "stopped"):
        (tmp_path / name).mkdir()
        onnx.save(graph, str(tmp_path / name / "model.onnx"))
    interop.split_contracts(tmp_path / "straight" / "model.onnx")
    replace, calls = interop.os.replace, []

    def stop_at_the_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt("stopped")
        replace(src, dst)

    monkeypatch.setattr(interop.os, "replace", stop_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        interop.split_contracts(tmp_path / "stopped" / "model.onnx")
    monkeypatch.setattr(interop.os, "replace", replace)
    assert not (tmp_path / "stopped" / "model.tinylm.onnx").exists()  # the standard graph is in place, ours not yet
    assert interop.split_contracts(tmp_path / "stopped" / "model.onnx") == tmp_path / "stopped" / "model.tinylm.onnx"
    for name in ("model.onnx", "model.tinylm.onnx"):
        assert (tmp_path / "stopped" / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "stopped").iterdir()) == ["model.onnx", "model.tinylm.onnx"]


def test_relayout_leaves_a_folder_it_did_not_write_alone(tmp_path):
    import pytest
    from scripts.tinylm.interop import InteropError, relayout

    folder = tmp_path / "theirs"
    (folder / "onnx").mkdir(parents=True)
    src = ROOT / "test" / "fixtures" / "tiny-model"
    shutil.copy(src / "onnx" / "model_quantized.onnx", folder / "onnx" / "model_quantized.onnx")  # standard contract
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "README.md").write_text("their words")
    with pytest.raises(InteropError, match="not a folder our exporter wrote"):
        relayout(folder)
    assert (folder / "README.md").read_text() == "their words" and "transformers.js_config" not in (folder / "config.json").read_text()


def test_shape_folder_writes_the_int8_graph_at_a_shape_with_its_config(tmp_path):
    out = tmp_path / "shape"
    r = subprocess.run([sys.executable, "-m", "scripts.tinylm.shape_folder", str(out), "--layers", "2", "--dim", "64", "--heads", "4",
                        "--kv-heads", "2", "--ffn", "96", "--vocab", "300", "--rope-theta", "100000"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (out / "onnx").iterdir()) == ["model_quantized.onnx", "model_quantized.tinylm.onnx"]
    config = json.loads((out / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"], config["rope_theta"]) == (2, 64, 300, 100000.0)
    graph = onnx.load(str(out / "onnx" / "model_quantized.onnx"))
    assert any(n.op_type == "DynamicQuantizeMatMul" for n in graph.graph.node)  # int8 weights, as the shipped graph
    assert not (tmp_path / "shape.tmp").exists()
