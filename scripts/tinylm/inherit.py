"""Parameter inheritance (PanGu-π Pro formula 3): initialise a smaller student from a trained parent.

Depth: which parent layers survive (first_last, uniform, or a data-driven skip score).
Width: which hidden channels, KV groups, attention heads and FFN neurons survive, ranked by
L2 norm, first-order Taylor |w·∂L/∂w|, or learnable sigmoid masks. Vocabulary: student embedding
rows are parent rows through vocab_map (compact id → parent id).

    /usr/bin/python3 -m scripts.tinylm.inherit --parent runs/parent/final.pt --student configs/student.toml \
        --vocab-map build/tokenizer-8k/vocab_map.json --calib build/data/parent --layers first_last --width taylor \
        --out runs/student/init.pt
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_atomic, weights_only
from .config import ConfigError, ModelConfig, load_config
from .data import BatchPlan, DataError, TokenSplit
from .model import TinyLM
from .progress import Progress

LAYER_METHODS = ("first_last", "uniform", "score")
WIDTH_METHODS = ("l2", "taylor", "learnable")


# ---- depth ---------------------------------------------------------------------------------------

def select_layers(n_parent: int, n_student: int, method: str, scores: torch.Tensor | None = None,
                  first: int | None = None) -> list[int]:
    if n_student > n_parent:
        raise ConfigError(f"student has {n_student} layers, parent only {n_parent}")
    if method == "first_last":
        k = first if first is not None else math.ceil(n_student / 2)
        return list(range(k)) + list(range(n_parent - (n_student - k), n_parent))
    if method == "uniform":
        if n_student == 1:
            return [0]
        return sorted({round(i * (n_parent - 1) / (n_student - 1)) for i in range(n_student)})
    if method == "score":
        if scores is None:
            raise ValueError("layer method 'score' needs scores")
        return sorted(int(i) for i in torch.topk(scores, n_student).indices)
    raise ConfigError(f"unknown layer selection {method!r} (choose from {LAYER_METHODS})")


@torch.no_grad()
def layer_skip_scores(model: TinyLM, batches) -> torch.Tensor:
    """How much the loss rises when each layer is skipped: a layer that matters scores high."""
    model.eval()
    progress = Progress("layer scores", model.config.n_layers + 1, "passes")
    base = sum(float(model(x, y)[1]) for x, y in batches)
    scores = []
    for i in range(model.config.n_layers):
        progress.update(i + 1)
        scores.append(sum(float(model(x, y, skip_layers=frozenset({i}))[1]) for x, y in batches) - base)
    progress.done()
    return torch.tensor(scores)


# ---- width ---------------------------------------------------------------------------------------

@dataclass
class UnitScores:
    channels: torch.Tensor  # [d_model]
    heads: list[torch.Tensor]  # per layer [n_heads]
    kv_groups: list[torch.Tensor]  # per layer [n_kv_heads]
    neurons: list[torch.Tensor]  # per layer [ffn_hidden]


def scores_from_saliency(model: TinyLM, s: dict[str, torch.Tensor], kept: list[int] | None = None) -> UnitScores:
    """Sum a per-weight saliency (w² for L2, |w·g| for Taylor) over the weights each unit owns. A
    channel's score counts the embedding and the `kept` layers only (all when None): the weights of a
    layer the student drops say nothing about which channels the student needs."""
    cfg = model.config
    hd = cfg.head_dim
    kept_set = set(range(cfg.n_layers) if kept is None else kept)
    channels = s["embed_tokens.weight"].sum(0)
    heads, groups, neurons = [], [], []
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        q, k, v = s[p + "self_attn.q_proj.weight"], s[p + "self_attn.k_proj.weight"], s[p + "self_attn.v_proj.weight"]
        o = s[p + "self_attn.o_proj.weight"]
        g, u, d = s[p + "mlp.gate_proj.weight"], s[p + "mlp.up_proj.weight"], s[p + "mlp.down_proj.weight"]
        if i in kept_set:
            channels = channels + q.sum(0) + k.sum(0) + v.sum(0) + g.sum(0) + u.sum(0) + o.sum(1) + d.sum(1)
        head = q.view(cfg.n_heads, hd, -1).sum((1, 2)) + o.view(o.shape[0], cfg.n_heads, hd).sum((0, 2))
        kv = k.view(cfg.n_kv_heads, hd, -1).sum((1, 2)) + v.view(cfg.n_kv_heads, hd, -1).sum((1, 2))
        heads.append(head)
        groups.append(kv + head.view(cfg.n_kv_heads, -1).sum(1))
        neurons.append(g.sum(1) + u.sum(1) + d.sum(0))
    return UnitScores(channels, heads, groups, neurons)


def l2_scores(model: TinyLM, kept: list[int] | None = None) -> UnitScores:
    return scores_from_saliency(model, {n: p.detach().pow(2) for n, p in model.named_parameters()}, kept)


def taylor_scores(model: TinyLM, batches, kept: list[int] | None = None) -> UnitScores:
    """First-order Taylor: |w · ∂L/∂w| per weight, summed over calibration batches."""
    model.train()
    acc = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    progress = Progress("taylor scores", len(batches), "batches")
    for b, (x, y) in enumerate(batches):
        progress.update(b)
        model.zero_grad(set_to_none=True)
        model(x, y)[1].backward()
        for n, p in model.named_parameters():
            acc[n] += (p.detach() * p.grad).abs()
    progress.done()
    model.zero_grad(set_to_none=True)
    return scores_from_saliency(model, acc, kept)


def learnable_scores(model: TinyLM, batches, keep: dict[str, float], steps: int = 200, lr: float = 1.0,
                     sparsity_weight: float = 0.5) -> UnitScores:
    """Sigmoid gates on channels, heads and neurons, trained on calibration data with frozen weights
    and a per-family budget pulling each family's mean gate to its keep ratio; the gate values are
    the scores. Returns the scores; `learnable_scores.last_means` holds each family's final mean."""
    cfg = model.config
    device = next(model.parameters()).device
    for p in model.parameters():
        p.requires_grad_(False)
    logits = {
        "channels": torch.full((cfg.d_model,), 3.0, requires_grad=True, device=device),
        "heads": torch.full((cfg.n_layers, cfg.n_heads), 3.0, requires_grad=True, device=device),
        "neurons": torch.full((cfg.n_layers, cfg.ffn_hidden), 3.0, requires_grad=True, device=device),
    }
    # Plain SGD, not Adam: a dead unit's gate must move only as fast as the penalty pushes it, while
    # Adam would normalise every gate's step to the same size and blur that difference.
    opt = torch.optim.SGD(logits.values(), lr=lr, momentum=0.9)
    model.train()
    progress = Progress("learnable mask", steps, "steps")
    try:
        for step in range(steps):
            progress.update(step)
            x, y = batches[step % len(batches)]
            gates = {k: torch.sigmoid(v) for k, v in logits.items()}
            model.channel_gate = gates["channels"]
            for i, layer in enumerate(model.layers):
                layer.self_attn.head_gate = gates["heads"][i]
                layer.mlp.neuron_gate = gates["neurons"][i]
            loss = model(x, y)[1]
            # Each family's budget: (mean − keep)² × its size, so every gate feels the same pull whatever
            # the family's size (scaled by the mean alone, 28,160 FFN gates each got ~7e-6 and the mean
            # never reached its keep ratio); the loss then decides which gates of the family stay open.
            penalty = sum((gates[k].mean() - keep[k]) ** 2 * gates[k].numel() for k in gates)
            opt.zero_grad()
            (loss + sparsity_weight * penalty).backward()
            opt.step()
        progress.done()
    finally:  # the parent model is the caller's: never leave it gated or frozen, even after an error
        model.channel_gate = None
        for layer in model.layers:
            layer.self_attn.head_gate = layer.mlp.neuron_gate = None
        for p in model.parameters():
            p.requires_grad_(True)
    gates = {k: torch.sigmoid(v.detach()) for k, v in logits.items()}
    learnable_scores.last_means = {k: float(g.mean()) for k, g in gates.items()}
    heads = list(gates["heads"])
    return UnitScores(gates["channels"], heads, [h.view(cfg.n_kv_heads, -1).sum(1) for h in heads], list(gates["neurons"]))


def calibration_batches(data_dir: str | Path, seq_len: int, batch_size: int, count: int, seed: int = 4242) -> list:
    """The first `count` batches of an order drawn with `seed` over a data folder in the parent's
    vocabulary: runs with different seeds calibrate on different text (else two "seeds" of a study
    would share one initialisation)."""
    plan = BatchPlan(TokenSplit(data_dir, "train"), seq_len, batch_size, seed=seed)
    return [plan.batch(b) for b in range(min(count, plan.batches_per_epoch))]


def scores_to_cpu(s: UnitScores) -> UnitScores:
    return UnitScores(s.channels.cpu(), [t.cpu() for t in s.heads], [t.cpu() for t in s.kv_groups], [t.cpu() for t in s.neurons])


def top_sorted(scores: torch.Tensor, k: int) -> torch.Tensor:
    return torch.topk(scores, k).indices.sort().values


# ---- building the student ------------------------------------------------------------------------

def build_student(parent: TinyLM, student_cfg: ModelConfig, vocab_map: list[int], layers: list[int],
                  scores: UnitScores) -> TinyLM:
    pc, sc = parent.config, student_cfg
    if sc.head_dim != pc.head_dim:
        raise ConfigError(f"student head_dim {sc.head_dim} must equal the parent's {pc.head_dim}")
    if sc.d_model > pc.d_model or sc.ffn_hidden > pc.ffn_hidden or sc.n_kv_heads > pc.n_kv_heads:
        raise ConfigError("student must not be wider than the parent (d_model, ffn_hidden, n_kv_heads)")
    s_group, p_group = sc.n_heads // sc.n_kv_heads, pc.n_heads // pc.n_kv_heads
    if s_group > p_group:
        raise ConfigError(f"student has {s_group} query heads per KV head, parent only {p_group}")
    if len(vocab_map) != sc.vocab_size:
        raise ConfigError(f"vocab_map has {len(vocab_map)} entries, student vocab_size is {sc.vocab_size}")
    if max(vocab_map) >= pc.vocab_size:
        raise ConfigError(f"vocab_map refers to parent id {max(vocab_map)} ≥ parent vocab_size {pc.vocab_size}")
    hd = pc.head_dim
    ch = top_sorted(scores.channels, sc.d_model)
    vm = torch.tensor(vocab_map)
    ps = {k: v.detach() for k, v in parent.state_dict().items()}
    out = {"embed_tokens.weight": ps["embed_tokens.weight"][vm][:, ch], "norm.weight": ps["norm.weight"][ch]}
    for j, i in enumerate(layers):
        p, q = f"layers.{i}.", f"layers.{j}."
        groups = top_sorted(scores.kv_groups[i], sc.n_kv_heads)
        heads = torch.cat([g * p_group + top_sorted(scores.heads[i].view(pc.n_kv_heads, p_group)[g], s_group)
                           for g in groups])
        head_rows = torch.cat([torch.arange(h * hd, (h + 1) * hd) for h in heads])
        kv_rows = torch.cat([torch.arange(g * hd, (g + 1) * hd) for g in groups])
        neurons = top_sorted(scores.neurons[i], sc.ffn_hidden)
        out[q + "input_layernorm.weight"] = ps[p + "input_layernorm.weight"][ch]
        out[q + "post_attention_layernorm.weight"] = ps[p + "post_attention_layernorm.weight"][ch]
        out[q + "self_attn.q_proj.weight"] = ps[p + "self_attn.q_proj.weight"][head_rows][:, ch]
        out[q + "self_attn.k_proj.weight"] = ps[p + "self_attn.k_proj.weight"][kv_rows][:, ch]
        out[q + "self_attn.v_proj.weight"] = ps[p + "self_attn.v_proj.weight"][kv_rows][:, ch]
        out[q + "self_attn.o_proj.weight"] = ps[p + "self_attn.o_proj.weight"][ch][:, head_rows]
        out[q + "mlp.gate_proj.weight"] = ps[p + "mlp.gate_proj.weight"][neurons][:, ch]
        out[q + "mlp.up_proj.weight"] = ps[p + "mlp.up_proj.weight"][neurons][:, ch]
        out[q + "mlp.down_proj.weight"] = ps[p + "mlp.down_proj.weight"][ch][:, neurons]
    student = TinyLM(sc)
    load_complete(student, {k: v.clone() for k, v in out.items()})
    return student


def load_complete(model: TinyLM, state: dict[str, torch.Tensor]) -> None:
    """Load a state that must set every parameter: a missing one would silently stay random.
    (Non-parameter entries such as the tied LM head's alias may be absent.)"""
    missing, unexpected = model.load_state_dict(state, strict=False)
    params = {name for name, _ in model.named_parameters()}
    left = [k for k in missing if k in params]
    if left or unexpected:
        raise ConfigError(f"inheritance built an incomplete student: parameters not set {left}, unknown entries {list(unexpected)}")


def inherit(parent: TinyLM, student_cfg: ModelConfig, vocab_map: list[int], batches, layer_method: str = "first_last",
            width_method: str = "taylor", first: int | None = None, device: str = "cpu",
            mask_steps: int = 200) -> tuple[TinyLM, dict]:
    """The whole inheritance: pick layers, score units on the kept layers, build the student.
    Scoring runs on `device` (a GPU for a large parent); the student is built on the CPU."""
    if width_method not in WIDTH_METHODS:
        raise ConfigError(f"unknown width criterion {width_method!r} (choose from {WIDTH_METHODS})")
    parent = parent.to(device)
    batches = [(x.to(device), y.to(device)) for x, y in batches]
    skip = layer_skip_scores(parent, batches) if layer_method == "score" else None
    layers = select_layers(parent.config.n_layers, student_cfg.n_layers, layer_method, skip, first)
    if width_method == "l2":
        scores = l2_scores(parent, layers)
    elif width_method == "taylor":
        scores = taylor_scores(parent, batches, layers)
    else:
        pc, sc = parent.config, student_cfg
        keep = {"channels": sc.d_model / pc.d_model, "heads": sc.n_heads / pc.n_heads, "neurons": sc.ffn_hidden / pc.ffn_hidden}
        scores = learnable_scores(parent, batches, keep, steps=mask_steps)
    student = build_student(parent.cpu(), student_cfg, vocab_map, layers, scores_to_cpu(scores))
    return student, {"layers": layers, "layer_method": layer_method, "width_method": width_method}


# ---- from files ------------------------------------------------------------------------------------

def read_vocab_map(path: str | Path) -> list[int]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read vocab map ({err})") from None


def inherit_student(parent_ckpt: str | Path, calib_data: str | Path, vocab_map_path: str | Path, student: ModelConfig,
                    out: str | Path, options: dict, seed: int, device: str = "cpu") -> tuple[TinyLM, dict]:
    """Build the student from the parent and save it at `out` (weights and how it was inherited).
    `options`: layers, width, first, seq_len, batch_size, calib_batches, mask_steps (the TOML [inherit])."""
    parent = model_from_checkpoint(load_checkpoint(parent_ckpt), str(parent_ckpt))
    split = TokenSplit(calib_data, "train")
    if split.vocab_size > parent.config.vocab_size:
        raise ConfigError(f"{calib_data}: vocabulary {split.vocab_size} is not the parent's ({parent.config.vocab_size})")
    batches = calibration_batches(calib_data, options.get("seq_len", 128), options.get("batch_size", 8),
                                  options.get("calib_batches", 8), seed)
    model, info = inherit(parent, student, read_vocab_map(vocab_map_path), batches, options.get("layers", "first_last"),
                          options.get("width", "taylor"), options.get("first"), device=device,
                          mask_steps=options.get("mask_steps", 200))
    info = {**info, "parent": str(parent_ckpt)}
    save_atomic(weights_only(model, {"inherited": info}), out)
    return model, info


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parent", required=True)
    ap.add_argument("--student", required=True, help="TOML config whose [model] is the student shape")
    ap.add_argument("--vocab-map", required=True)
    ap.add_argument("--calib", required=True, help="pre-tokenized data in the parent's vocabulary")
    ap.add_argument("--layers", default="first_last", choices=LAYER_METHODS)
    ap.add_argument("--first", type=int, default=None, help="first_last: how many leading layers")
    ap.add_argument("--width", default="taylor", choices=WIDTH_METHODS)
    ap.add_argument("--calib-batches", type=int, default=8)
    ap.add_argument("--seed", type=int, default=4242, help="which calibration batches (per run)")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    options = {"layers": args.layers, "width": args.width, "first": args.first, "seq_len": args.seq_len,
               "batch_size": args.batch_size, "calib_batches": args.calib_batches}
    try:
        student, info = inherit_student(args.parent, args.calib, args.vocab_map, load_config(args.student).model, args.out, options, args.seed)
    except (ConfigError, DataError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: layers {info['layers']}, width by {info['width_method']}, "
          f"{student.num_params() / 1e6:.2f}M params")
    return 0


if __name__ == "__main__":
    from .cpu import tune_malloc

    tune_malloc()  # before torch allocates: see cpu.py
    sys.exit(main(sys.argv[1:]))
