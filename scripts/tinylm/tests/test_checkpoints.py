"""The reference's architecture features (model.py) and the fixture writers (checkpoints.py)."""
import json
import struct

import numpy as np
import torch

from scripts.tinylm.checkpoints import (LLAMA3_SCALING, ArchConfig, dequantize, llama3_rope_factors, permute_rope, quantize,
                                        random_model, write_safetensors, encode)
from scripts.tinylm.model import llama3_inv_freq

torch.set_num_threads(1)


def arch(**features) -> ArchConfig:
    return ArchConfig(vocab_size=97, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=128, max_seq_len=64, **features)


def test_llama3_scaling_as_transformers_computes_it_equals_llama_cpps_rope_freqs():
    cfg = arch(head_dim_override=32, rope_theta=500000.0, rope_scaling=LLAMA3_SCALING)
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2).double() / cfg.head_dim))
    factors = torch.tensor(llama3_rope_factors(cfg), dtype=torch.float64)
    assert torch.allclose(llama3_inv_freq(inv, cfg.rope_scaling), inv / factors, rtol=1e-12)
    assert factors.min() == 1 and factors.max() == LLAMA3_SCALING["factor"]  # both ends of the ramp occur


def test_sliding_window_sees_only_the_last_positions():
    torch.manual_seed(0)
    windowed, full = random_model(arch(sliding_window=4), 0), random_model(arch(), 0)
    ids = torch.randint(0, 97, (1, 10))
    a, b = windowed(ids)[0], full(ids)[0]
    assert torch.allclose(a[0, :4], b[0, :4], atol=1e-5)  # within the window: the same
    assert not torch.allclose(a[0, 4:], b[0, 4:], atol=1e-3)
    # The cache path applies the same window: decoding step by step equals the full pass.
    logits, _, past = windowed(ids[:, :5])
    steps = [logits]
    for t in range(5, 10):
        logits, _, past = windowed(ids[:, t:t + 1], past=past)
        steps.append(logits)
    assert (torch.cat(steps, 1) - a).abs().max() <= 1e-4


def test_qkv_bias_and_qk_norm_are_parameters_that_change_the_output():
    torch.manual_seed(0)
    ids = torch.randint(0, 97, (1, 6))
    for features, names in (({"qkv_bias": True}, ["q_proj.bias", "k_proj.bias", "v_proj.bias"]), ({"qk_norm": True}, ["q_norm.weight", "k_norm.weight"])):
        m = random_model(arch(**features), 0)
        params = dict(m.named_parameters())
        assert all(f"layers.0.self_attn.{n}" in params for n in names)
        before = m(ids)[0]
        with torch.no_grad():
            params[f"layers.0.self_attn.{names[0]}"].mul_(2)
        assert not torch.allclose(before, m(ids)[0], atol=1e-4)


def test_block_quantizers_round_trip_within_a_step():
    """Q8_0 rounds to ±127 steps (half a step of error); Q4_0 to -8..7 steps of |max|/8 with max at -8,
    so a value near +|max| is clipped at 7 (up to one step)."""
    w = np.random.default_rng(0).normal(size=(8, 64)).astype(np.float32)
    for dtype, levels, err in (("Q8_0", 127, 0.5), ("Q4_0", 8, 1.0)):
        data = quantize(w, dtype)
        assert len(data) == 8 * 2 * (34 if dtype == "Q8_0" else 18)
        back = dequantize(data, dtype, w.shape)
        step = np.abs(w.reshape(-1, 32)).max(1, keepdims=True) / levels
        assert (np.abs(back - w).reshape(-1, 32) <= step * err + 1e-3 * step).all()


def test_rope_permutation_interleaves_each_heads_halves():
    w = torch.arange(2 * 8).float().reshape(8, 2)  # 2 heads of head_dim 4: rows (a0 a1 b0 b1) per head
    p = permute_rope(w, heads=2)
    assert p[:, 0].tolist() == [0, 4, 2, 6, 8, 12, 10, 14]  # row 2r + a = Hugging Face's a·(hd/2) + r


def test_safetensors_writer_layout(tmp_path):
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    write_safetensors(tmp_path / "m.safetensors", {"a": ("F32", [2, 3], encode(t, "F32")), "b": ("BF16", [3], encode(t[0], "BF16"))})
    raw = (tmp_path / "m.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    assert n % 8 == 0 and header["a"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]} and header["b"]["data_offsets"] == [24, 30]
    assert np.frombuffer(raw[8 + n:8 + n + 24], "<f4").tolist() == list(range(6))
