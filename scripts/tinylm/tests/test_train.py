import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from scripts.tinylm.config import ConfigError, load_config
from scripts.tinylm.data import TokenSplit
from scripts.tinylm.train import train
from .conftest import ROOT, TINY_SHARDS, write_config


def read_log(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def unigram_cross_entropy(train: TokenSplit, val: TokenSplit) -> float:
    """Loss of the best context-free model (train-split unigram frequencies) on the validation split."""
    counts = np.bincount(train.tokens(0, train.num_tokens), minlength=train.vocab_size) + 0.5
    p = counts / counts.sum()
    return float(-np.log(p[val.tokens(0, val.num_tokens)]).mean())


def test_loss_falls_well_below_unigram_entropy_on_real_text(tmp_path):
    cfg = load_config(write_config(
        tmp_path / "c.toml", TINY_SHARDS, tmp_path / "run",
        model=dict(vocab_size=8192, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=160, max_seq_len=64),
        seq_len=64, batch_size=16, max_steps=800, lr=2e-2, min_lr=5e-3, warmup_steps=30, eval_interval=800,
        eval_batches=8, log_interval=50, threads=0))  # threads=0: torch 1 thread + OpenBLAS's own pool was fastest
    final = train(cfg)
    val = torch.load(final)["val_loss"]
    baseline = unigram_cross_entropy(TokenSplit(TINY_SHARDS, "train"), TokenSplit(TINY_SHARDS, "val"))
    assert val < baseline - 0.5, f"validation loss {val:.3f} vs unigram {baseline:.3f}"


def test_interrupted_run_resumes_exactly(tmp_path):
    kw = dict(max_steps=8, rounds=2, round_fraction=0.5, checkpoint_interval=100)
    straight = load_config(write_config(tmp_path / "a.toml", TINY_SHARDS, tmp_path / "a", **kw))
    train(straight)
    resumed = load_config(write_config(tmp_path / "b.toml", TINY_SHARDS, tmp_path / "b", **kw))
    train(resumed, stop_after=3)  # "killed" after step 3 of round 1
    train(resumed, stop_after=6)  # "killed" again in round 2
    train(resumed)
    a, b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    assert [e for e in a if "loss" in e] == [
        {**e, "tok_per_s": a_e["tok_per_s"]} for e, a_e in zip([e for e in b if "loss" in e], [e for e in a if "loss" in e])
    ]
    assert [e.get("val_loss") for e in a] == [e.get("val_loss") for e in b]
    rounds = [e for e in a if "sampled_batches" in e]
    assert rounds == [{**rounds[0], "scored_batches": 8, "sampled_batches": 4}]  # 8 micro-batches, half drawn
    assert torch.load(tmp_path / "a" / "ckpt.pt")["round_batches"] == torch.load(tmp_path / "b" / "ckpt.pt")["round_batches"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_bad_config_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nd_model = 'wide'\n")
    r = run_cli("scripts.tinylm.train", str(bad))
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [f"error: {bad}: model.d_model must be int, got 'wide'"]
    bad.write_text("[model]\nd_modle = 64\n")
    r = run_cli("scripts.tinylm.train", str(bad))
    assert r.returncode == 1 and "unknown key model.d_modle" in r.stderr
    bad.write_text("[model\n")
    assert "not valid TOML" in run_cli("scripts.tinylm.train", str(bad)).stderr


def test_missing_shard_and_checkpoint_are_clear_errors(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "index.json").write_text((TINY_SHARDS / "index.json").read_text())
    cfg = write_config(tmp_path / "c.toml", data, tmp_path / "run")
    r = run_cli("scripts.tinylm.train", str(cfg))
    assert r.returncode == 1 and "general-000.bin: shard listed in index.json is missing" in r.stderr
    assert not (tmp_path / "run").exists()  # nothing written

    cfg = write_config(tmp_path / "d.toml", TINY_SHARDS, tmp_path / "run2", init_from=str(tmp_path / "nope.pt"))
    r = run_cli("scripts.tinylm.train", str(cfg))
    assert r.returncode == 1 and r.stderr.strip() == f"error: {tmp_path / 'nope.pt'}: checkpoint not found"

    garbled = tmp_path / "garbled.pt"
    garbled.write_bytes(b"not a checkpoint")
    r = run_cli("scripts.tinylm.evaluate", str(garbled), "--data", str(TINY_SHARDS), "--tokenizer", "test/fixtures/tiny-model")
    assert r.returncode == 1 and f"{garbled}: not a readable checkpoint" in r.stderr


def test_a_second_round_branches_from_a_finished_run(tmp_path):
    """Round-2 variants share one round 1: branching from the run's ckpt.pt reproduces the straight
    two-round run; from a weights-only final.pt it draws the same batches (optimizer starts afresh)."""
    kw = dict(max_steps=8, round_fraction=0.5, checkpoint_interval=100)
    train(load_config(write_config(tmp_path / "a.toml", TINY_SHARDS, tmp_path / "a", rounds=2, **kw)))
    train(load_config(write_config(tmp_path / "b.toml", TINY_SHARDS, tmp_path / "b", rounds=1, **kw)))
    for name, source in (("c", "ckpt.pt"), ("d", "final.pt")):
        train(load_config(write_config(tmp_path / f"{name}.toml", TINY_SHARDS, tmp_path / name, rounds=2,
                                       branch_from=str(tmp_path / "b" / source), **kw)))
    picked = {n: torch.load(tmp_path / n / "ckpt.pt")["round_batches"] for n in "acd"}
    assert picked["a"] == picked["c"] == picked["d"]
    round2 = {n: [e for e in read_log(tmp_path / n) if e.get("round") == 2 and "loss" in e] for n in "ac"}
    assert [e["loss"] for e in round2["a"]] == [e["loss"] for e in round2["c"]]
    assert torch.load(tmp_path / "d" / "final.pt")["tokens_seen"] == 12 * 4 * 32  # 8 + 4 steps of 4 × 32 tokens

    train(load_config(write_config(tmp_path / "e.toml", TINY_SHARDS, tmp_path / "e", rounds=2, round_sampling="fresh",
                                   branch_from=str(tmp_path / "b" / "ckpt.pt"), **kw)))
    assert torch.load(tmp_path / "e" / "ckpt.pt")["round_batches"] == [8, 9, 10, 11]  # batches round 1 never saw


def test_branching_needs_a_finished_run_of_the_same_length(tmp_path):
    kw = dict(max_steps=8, checkpoint_interval=100)
    train(load_config(write_config(tmp_path / "b.toml", TINY_SHARDS, tmp_path / "b", rounds=1, **kw)))
    cfg = load_config(write_config(tmp_path / "c.toml", TINY_SHARDS, tmp_path / "c", rounds=2,
                                   branch_from=str(tmp_path / "b" / "ckpt.pt"), **{**kw, "max_steps": 9}))
    with pytest.raises(ConfigError, match="ran 8 steps"):
        train(cfg)


def test_fresh_batches_start_after_everything_round_one_saw_even_with_a_score_limit(tmp_path):
    train(load_config(write_config(tmp_path / "f.toml", TINY_SHARDS, tmp_path / "f", max_steps=8, rounds=2,
                                   round_sampling="fresh", round_score_limit=3, checkpoint_interval=100)))
    assert torch.load(tmp_path / "f" / "ckpt.pt")["round_batches"] == [8, 9, 10, 11]


def test_checkpoints_are_written_before_evaluation(tmp_path, monkeypatch):
    """A run cut short during an evaluation (a time limit) keeps the steps it trained, and the final weights."""
    import scripts.tinylm.train as train_module

    cfg = load_config(write_config(tmp_path / "c.toml", TINY_SHARDS, tmp_path / "run", max_steps=4, eval_interval=2, checkpoint_interval=2))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("time limit during evaluation")

    monkeypatch.setattr(train_module, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert torch.load(tmp_path / "run" / "ckpt.pt")["step"] == 2  # saved before the evaluation that was cut


def test_later_rounds_continue_from_round_one_rate_with_a_short_warmup():
    from scripts.tinylm.config import TrainConfig
    from scripts.tinylm.train import lr_at

    tc = TrainConfig(lr=3e-3, min_lr=3e-4, warmup_steps=40)
    assert lr_at(0, 400, tc) == pytest.approx(3e-3 / 40)  # round 1 warms up from zero
    assert lr_at(399, 400, tc) == pytest.approx(3e-4, rel=1e-3)  # ... and ends at min_lr
    round2 = [lr_at(s, 200, tc, round_=2) for s in range(200)]
    assert round2[0] > 3e-4  # no drop below where round 1 stopped
    assert round2[9] == pytest.approx(3e-3)  # peak after 5% of the round (10 of 200 steps), not 40
    assert all(a >= b for a, b in zip(round2[9:], round2[10:]))  # then cosine down


def test_contiguous_batches_are_runs_of_windows_and_cover_each_epoch_once():
    from scripts.tinylm.data import BatchPlan

    split = TokenSplit(TINY_SHARDS, "train")
    plan = BatchPlan(split, 32, 4, seed=1, grouping="contiguous")
    seen = []
    for b in range(plan.batches_per_epoch):
        w = plan.windows_of(b)
        assert list(w) == list(range(w[0], w[0] + 4))  # one stretch of text
        seen += list(w)
    assert sorted(seen) == list(range(plan.batches_per_epoch * 4))
    shuffled = BatchPlan(split, 32, 4, seed=1)
    assert any(list(shuffled.windows_of(b)) != list(range(shuffled.windows_of(b)[0], shuffled.windows_of(b)[0] + 4)) for b in range(5))
