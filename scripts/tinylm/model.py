"""A Llama-style decoder: RMSNorm, rotary embeddings, SwiGLU, grouped-query attention, tied embeddings.

The architecture features of the checkpoints the server reads (scripts/tinylm/checkpoints.py builds
them) are optional attributes of the config, off in ModelConfig: `qkv_bias` (qwen2), `qk_norm`
(qwen3: RMSNorm over each head of q and k before rotary), `sliding_window` (mistral: a position
attends to its last sliding_window positions, itself included), `rope_scaling` (Llama 3's
"llama3" dict, as in config.json), and a `head_dim` other than d_model / n_heads.

Parameter names follow Hugging Face's LlamaForCausalLM so the weights map one-to-one onto
transformers' layout. Runs on PyTorch 1.13 (CPU) and 2.x (CUDA); 2.x-only features are guarded.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")
KVCache = list  # per layer: (key, value), each [batch, n_kv_heads, past, head_dim]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def llama3_inv_freq(inv_freq: torch.Tensor, scaling: dict) -> torch.Tensor:
    """Llama 3's rope_scaling (transformers' _compute_llama3_parameters): long wavelengths slowed by
    `factor`, short ones kept, a smooth ramp between."""
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > old / low, inv_freq / factor, inv_freq)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old / high) & ~(wavelen > old / low)
    return torch.where(medium, smoothed, scaled)


def rotary_tables(head_dim: int, positions: torch.Tensor, theta: float, scaling: Optional[dict] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin for the given positions [batch, seq] → [batch, 1, seq, head_dim] (Hugging Face's rotate-half layout)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim))
    if scaling:
        inv_freq = llama3_inv_freq(inv_freq, scaling)
    angles = positions.float()[..., None] * inv_freq
    angles = torch.cat([angles, angles], dim=-1)[:, None]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + rotated * sin).type_as(x)


def repeat_kv(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """[b, kv, t, d] → [b, n_heads, t, d], each KV head serving n_heads / kv query heads.
    (expand + reshape, not repeat_interleave: the latter exports to ONNX with a fixed batch size.)"""
    b, kv, t, d = x.shape
    if kv == n_heads:
        return x
    return x[:, :, None].expand(b, kv, n_heads // kv, t, d).reshape(b, n_heads, t, d)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        bias = getattr(cfg, "qkv_bias", False)
        self.q_proj = nn.Linear(cfg.d_model, cfg.n_heads * cfg.head_dim, bias=bias)
        self.k_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=bias)
        self.v_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=bias)
        self.o_proj = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.d_model, bias=False)
        if getattr(cfg, "qk_norm", False):
            self.q_norm = RMSNorm(cfg.head_dim, cfg.norm_eps)
            self.k_norm = RMSNorm(cfg.head_dim, cfg.norm_eps)
        self.head_gate: Optional[torch.Tensor] = None  # [n_heads], set only while learning pruning masks

    def forward(self, x, cos, sin, bias=None, past=None):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        present = (k, v)
        kr, vr = repeat_kv(k, self.n_heads), repeat_kv(v, self.n_heads)
        if HAS_SDPA:
            y = F.scaled_dot_product_attention(q, kr, vr, attn_mask=bias, is_causal=bias is None)
        else:
            scores = (q @ kr.transpose(-2, -1)) / math.sqrt(self.head_dim)
            if bias is None:
                bias = causal_bias(t, k.shape[2], x.device, scores.dtype)
            y = torch.softmax(scores.float() + bias, dim=-1).type_as(q) @ vr
        if self.head_gate is not None:
            y = y * self.head_gate.view(1, -1, 1, 1)
        y = y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)
        return self.o_proj(y), present


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.d_model, cfg.ffn_hidden, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.ffn_hidden, bias=False)
        self.down_proj = nn.Linear(cfg.ffn_hidden, cfg.d_model, bias=False)
        self.neuron_gate: Optional[torch.Tensor] = None  # [ffn_hidden], only while learning masks

    def forward(self, x):
        h = F.silu(self.gate_proj(x)) * self.up_proj(x)
        if self.neuron_gate is not None:
            h = h * self.neuron_gate
        return self.down_proj(h)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = FeedForward(cfg)

    def forward(self, x, cos, sin, bias=None, past=None, channel_gate=None):
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, bias, past)
        x = x + (a if channel_gate is None else a * channel_gate)
        m = self.mlp(self.post_attention_layernorm(x))
        x = x + (m if channel_gate is None else m * channel_gate)
        return x, present


def causal_bias(t: int, total: int, device, dtype=torch.float32, window: Optional[int] = None) -> torch.Tensor:
    """Additive mask [t, total]: query i (at position total - t + i) sees keys up to itself (and,
    with a sliding window, only the last `window` of them)."""
    q_pos = torch.arange(total - t, total, device=device)[:, None]
    k_pos = torch.arange(total, device=device)[None, :]
    hidden = k_pos > q_pos
    if window:
        hidden = hidden | (k_pos <= q_pos - window)
    return torch.zeros(t, total, device=device, dtype=dtype).masked_fill(hidden, torch.finfo(dtype).min)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy. On CPU as logsumexp − target logit: Debian's torch 1.13 log_softmax is ~6×
    slower than this (same value); CUDA keeps the fused kernel."""
    if logits.is_cuda:
        return F.cross_entropy(logits, targets)
    return (logits.logsumexp(-1) - logits.gather(-1, targets[:, None])[:, 0]).mean()


class TinyLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.embed_tokens.weight  # tied
        self.channel_gate: Optional[torch.Tensor] = None  # [d_model], only while learning masks
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):  # residual outputs, GPT-2 scaling
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())  # tied weights are counted once
        return n if embedding else n - self.embed_tokens.weight.numel()

    def forward(
        self,
        input_ids: torch.Tensor,
        targets: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        past: Optional[KVCache] = None,
        skip_layers: frozenset = frozenset(),
    ):
        """Logits [batch, seq, vocab] (and mean loss if targets are given), plus the new KV cache.

        Training calls this with input_ids (and targets) only: plain causal attention. Generation and
        export pass position_ids, an attention_mask over [past + seq] (0 = padding) and the past cache.
        """
        b, t = input_ids.shape
        past_len = past[0][0].shape[2] if past else 0
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + t, device=input_ids.device).expand(b, t)
        cos, sin = rotary_tables(self.config.head_dim, position_ids, self.config.rope_theta, getattr(self.config, "rope_scaling", None))
        bias = None
        window = getattr(self.config, "sliding_window", None)
        if attention_mask is not None or past_len > 0 or window:
            bias = causal_bias(t, past_len + t, input_ids.device, window=window)[None, None]
            if attention_mask is not None:
                keep = attention_mask[:, None, None, :].bool()
                bias = bias.masked_fill(~keep, torch.finfo(bias.dtype).min)
        x = self.embed_tokens(input_ids)
        if self.channel_gate is not None:
            x = x * self.channel_gate
        presents = []
        for i, layer in enumerate(self.layers):
            if i in skip_layers:
                presents.append(None)
                continue
            x, present = layer(x, cos, sin, bias, past[i] if past else None, self.channel_gate)
            presents.append(present)
        logits = self.lm_head(self.norm(x))
        loss = None
        if targets is not None:
            loss = cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss, presents

    @torch.no_grad()
    def generate(self, ids: list[int], max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
                 eos_id: Optional[int] = None, generator: Optional[torch.Generator] = None) -> list[int]:
        """Sample a continuation with the KV cache (temperature 0 = greedy)."""
        device = self.embed_tokens.weight.device
        x = torch.tensor([ids], device=device)
        past, out = None, []
        for _ in range(max_new_tokens):
            if x.shape[1] + (past[0][0].shape[2] if past else 0) > self.config.max_seq_len:
                break
            logits, _, past = self(x, past=past)
            logits = logits[0, -1].float()
            if temperature <= 0:
                nxt = int(logits.argmax())
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                if top_p < 1.0:
                    sorted_p, order = probs.sort(descending=True)
                    drop = sorted_p.cumsum(0) - sorted_p > top_p
                    probs[order[drop]] = 0
                    probs /= probs.sum()
                nxt = int(torch.multinomial(probs, 1, generator=generator))
            out.append(nxt)
            if nxt == eos_id:
                break
            x = torch.tensor([[nxt]], device=device)
        return out
