"""Checkpoints as they arrive from a hub, for the server's format readers: small random-weight models
of each architecture it runs (llama, mistral, qwen2, qwen3), written as a Hugging Face folder
(config.json, tokenizer.json, safetensors) and as a GGUF file (llama.cpp's layout and metadata, its
own vocabulary, no tokenizer.json), with the PyTorch reference's logits for parity tests.

    /usr/bin/python3 -m scripts.tinylm.checkpoints LLAMA2_TOKENIZER_DIR GPT_TOKENIZER_DIR OUT_DIR

OUT_DIR/<arch>-safetensors/ and OUT_DIR/<arch>-gguf/model.gguf for each architecture, each with
reference.json (prompts, greedy continuations) and reference.f32 (the reference's logits at each
greedy step, [rows, vocab] little-endian f32). The reference is the PyTorch model (model.py) with the
weights exactly as the file stores them (rounded to bf16/f16, or quantized to Q8_0/Q4_0 and decoded),
so a reader that gets a tensor wrong shows up as a different continuation.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .config import ModelConfig
from .model import TinyLM


@dataclass
class ArchConfig(ModelConfig):
    """ModelConfig plus the features model.py reads as optional attributes."""
    head_dim_override: int = 0
    qkv_bias: bool = False
    qk_norm: bool = False
    sliding_window: Optional[int] = None
    rope_scaling: Optional[dict] = None
    tied: bool = True

    @property
    def head_dim(self) -> int:
        return self.head_dim_override or self.d_model // self.n_heads


LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}

# architecture → (tokenizer, config, safetensors dtype, GGUF matrix type)
ARCHS = {
    "llama": ("llama2", dict(n_heads=4, n_kv_heads=2, head_dim_override=32, rope_theta=500000.0, rope_scaling=LLAMA3_SCALING, tied=False), "BF16", "Q4_0"),
    "mistral": ("llama2", dict(n_heads=4, n_kv_heads=1, sliding_window=16, tied=False), "F16", "Q8_0"),
    "qwen2": ("gpt", dict(n_heads=4, n_kv_heads=2, qkv_bias=True, rope_theta=1000000.0, norm_eps=1e-6), "BF16", "Q8_0"),
    "qwen3": ("gpt", dict(n_heads=4, n_kv_heads=2, head_dim_override=32, qk_norm=True, rope_theta=1000000.0, norm_eps=1e-6), "F32", "F16"),
}
PROMPT_LEN = {"mistral": 24}  # longer than the sliding window, so the window matters
NEW_TOKENS = 8


def random_model(cfg: ArchConfig, seed: int) -> TinyLM:
    torch.manual_seed(seed)
    model = TinyLM(cfg)
    if not cfg.tied:
        model.lm_head = torch.nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
    with torch.no_grad():  # scaled so that greedy choices are not near-ties
        model.embed_tokens.weight.normal_(0, 0.5 if cfg.tied else 1.0)
        if not cfg.tied:
            model.lm_head.weight.normal_(0, 3.0 / cfg.d_model ** 0.5)
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
            elif name.endswith(".bias"):
                p.normal_(0, 0.5)
            elif name.endswith("proj.weight"):
                p.normal_(0, 1.0 / p.shape[1] ** 0.5)
    return model.eval()


# --- tensor encodings --------------------------------------------------------------------------

def round_to(t: torch.Tensor, dtype: str) -> torch.Tensor:
    """t as the file stores it, decoded back to f32."""
    if dtype == "F32":
        return t.float()
    if dtype in ("F16", "BF16"):
        return t.to(torch.float16 if dtype == "F16" else torch.bfloat16).float()
    return torch.from_numpy(dequantize(quantize(t.float().numpy(), dtype), dtype, t.shape))


def quantize(w: np.ndarray, dtype: str) -> bytes:
    """ggml's reference quantizers (ggml-quants.c), blocks of 32 along each row."""
    blocks = w.astype(np.float32).reshape(-1, 32)
    if dtype == "Q8_0":
        d = np.abs(blocks).max(axis=1) / 127
        inv = np.where(d > 0, 1 / np.where(d > 0, d, 1), 0)
        q = np.round(blocks * inv[:, None]).astype(np.int8)
        out = np.zeros(len(blocks), dtype=[("d", "<f2"), ("q", "i1", 32)])
        out["d"], out["q"] = d.astype(np.float16), q
        return out.tobytes()
    if dtype == "Q4_0":
        idx = np.abs(blocks).argmax(axis=1)
        mx = blocks[np.arange(len(blocks)), idx]
        d = mx / -8
        inv = np.where(d != 0, 1 / np.where(d != 0, d, 1), 0)
        q = np.minimum(15, (blocks * inv[:, None] + 8.5).astype(np.int8)).astype(np.uint8)
        out = np.zeros(len(blocks), dtype=[("d", "<f2"), ("q", "u1", 16)])
        out["d"], out["q"] = d.astype(np.float16), q[:, :16] | (q[:, 16:] << 4)
        return out.tobytes()
    raise ValueError(dtype)


def dequantize(data: bytes, dtype: str, shape) -> np.ndarray:
    if dtype == "Q8_0":
        b = np.frombuffer(data, dtype=[("d", "<f2"), ("q", "i1", 32)])
        x = b["d"].astype(np.float32)[:, None] * b["q"].astype(np.float32)
    else:
        b = np.frombuffer(data, dtype=[("d", "<f2"), ("q", "u1", 16)])
        q = np.concatenate([b["q"] & 15, b["q"] >> 4], axis=1).astype(np.float32) - 8
        x = b["d"].astype(np.float32)[:, None] * q
    return x.reshape(shape)


def encode(t: torch.Tensor, dtype: str) -> bytes:
    if dtype == "F32":
        return t.float().numpy().astype("<f4").tobytes()
    if dtype == "F16":
        return t.float().numpy().astype("<f2").tobytes()
    if dtype == "BF16":
        return t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    return quantize(t.float().numpy(), dtype)


# --- safetensors ------------------------------------------------------------------------------

def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], bytes]]) -> None:
    """The format: u64 header length, the JSON header (offsets relative to the data), the data."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for _, _, data in tensors.values():
            f.write(data)


# --- GGUF -------------------------------------------------------------------------------------

GGML_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 8, "BF16": 30}


def gguf_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_value(v) -> bytes:
    """(type, payload): str 8, bool 7, int u32 4, float f32 6, lists as arrays (9) of one of those."""
    if isinstance(v, bool):
        return struct.pack("<I?", 7, v)
    if isinstance(v, int):
        return struct.pack("<II", 4, v)
    if isinstance(v, float):
        return struct.pack("<If", 6, v)
    if isinstance(v, str):
        return struct.pack("<I", 8) + gguf_string(v)
    if isinstance(v, list):
        kind = {str: 8, int: 5, float: 6}[type(v[0])]
        items = b"".join(gguf_string(x) for x in v) if kind == 8 else struct.pack(f"<{len(v)}{'i' if kind == 5 else 'f'}", *v)
        return struct.pack("<IIQ", 9, kind, len(v)) + items
    raise TypeError(type(v))


def write_gguf(path: Path, metadata: dict, tensors: list[tuple[str, str, list[int], bytes]], alignment: int = 32) -> None:
    """GGUF v3: header, metadata, tensor infos (dims innermost first), data at `alignment`."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)))
    for key, value in metadata.items():
        out += gguf_string(key) + gguf_value(value)
    offset = 0
    for name, dtype, shape, data in tensors:
        dims = list(reversed(shape))
        out += gguf_string(name) + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims, GGML_TYPES[dtype], offset)
        offset += len(data) + (-len(data) % alignment)
    out += b"\0" * (-len(out) % alignment)
    for _, _, _, data in tensors:
        out += data + b"\0" * (-len(data) % alignment)
    path.write_bytes(bytes(out))


def permute_rope(w: torch.Tensor, heads: int) -> torch.Tensor:
    """convert_hf_to_gguf.py's permutation of llama's q/k rows (rotate-half → interleaved pairs)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(cfg: ArchConfig) -> list[float]:
    """convert_hf_to_gguf.py's rope_freqs.weight for Llama 3's scaling: each frequency's divisor."""
    s = cfg.rope_scaling
    factors = []
    for i in range(0, cfg.head_dim, 2):
        wavelen = 2 * math.pi * cfg.rope_theta ** (i / cfg.head_dim)
        old = s["original_max_position_embeddings"]
        if wavelen < old / s["high_freq_factor"]:
            factors.append(1.0)
        elif wavelen > old / s["low_freq_factor"]:
            factors.append(s["factor"])
        else:
            smooth = (old / wavelen - s["low_freq_factor"]) / (s["high_freq_factor"] - s["low_freq_factor"])
            factors.append(1 / ((1 - smooth) / s["factor"] + smooth))
    return factors


GGUF_BLOCK = {
    "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight", "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(hf: str) -> str:
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    if hf in top:
        return top[hf]
    _, _, i, rest = hf.split(".", 3)
    return f"blk.{i}.{GGUF_BLOCK[rest]}"


def gguf_vocab(tokenizer: dict, tok_config: dict) -> dict:
    """tokenizer.ggml.* as llama.cpp's convert writes them for a SentencePiece ("llama") or byte-level BPE ("gpt2") vocabulary."""
    vocab = tokenizer["model"]["vocab"]
    added = {a["id"]: a for a in tokenizer.get("added_tokens", [])}
    n = max([*vocab.values(), *added]) + 1
    tokens, types = [f"[PAD{i}]" for i in range(n)], [5] * n  # unused ids, as llama.cpp names them
    for t, i in vocab.items():
        tokens[i], types[i] = t, 1
    spm = tokenizer["model"].get("byte_fallback", False)
    for i, a in added.items():
        tokens[i], types[i] = a["content"], 3
    ids = {t: i for i, t in enumerate(tokens)}
    meta = {"tokenizer.ggml.model": "llama" if spm else "gpt2", "tokenizer.ggml.tokens": tokens}
    if spm:
        for i, t in enumerate(tokens):
            if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                types[i] = 6
        if tokenizer["model"].get("unk_token") in ids:
            types[ids[tokenizer["model"]["unk_token"]]] = 2
            meta["tokenizer.ggml.unknown_token_id"] = ids[tokenizer["model"]["unk_token"]]
        # SentencePiece's scores, recovered from tokenizer.json: a piece ranks as its first merge
        # (transformers derived those merges from the scores, in score order); pieces no merge makes
        # (single characters) after every merged one.
        rank = {}
        for r, m in enumerate(tokenizer["model"]["merges"]):
            rank.setdefault("".join(m.split(" ") if isinstance(m, str) else m), r)
        meta["tokenizer.ggml.scores"] = [float(-rank.get(t, len(rank) + i)) if types[i] == 1 else 0.0 for i, t in enumerate(tokens)]
        meta["tokenizer.ggml.add_bos_token"] = bool(tok_config.get("add_bos_token", True))
    else:
        meta["tokenizer.ggml.pre"] = "llama-bpe"  # the cl100k split regex
        meta["tokenizer.ggml.merges"] = [m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]]
        meta["tokenizer.ggml.add_bos_token"] = False
    meta["tokenizer.ggml.token_type"] = types
    for key, field in (("bos_token_id", "bos_token"), ("eos_token_id", "eos_token")):
        if tok_config.get(field) in ids:
            meta[f"tokenizer.ggml.{key}"] = ids[tok_config[field]]
    return meta


# --- the fixtures -----------------------------------------------------------------------------

def hf_config(arch: str, cfg: ArchConfig, bos, eos) -> dict:
    c = {
        "architectures": [{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[arch]],
        "model_type": arch, "hidden_size": cfg.d_model, "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads, "head_dim": cfg.head_dim, "intermediate_size": cfg.ffn_hidden, "vocab_size": cfg.vocab_size,
        "rope_theta": cfg.rope_theta, "rms_norm_eps": cfg.norm_eps, "max_position_embeddings": cfg.max_seq_len,
        "tie_word_embeddings": cfg.tied, "hidden_act": "silu", "bos_token_id": bos, "eos_token_id": eos, "torch_dtype": "bfloat16",
    }
    if cfg.rope_scaling:
        c["rope_scaling"] = cfg.rope_scaling
    if arch == "mistral":
        c["sliding_window"] = cfg.sliding_window
    if arch in ("qwen2", "qwen3"):
        c.update(use_sliding_window=False, attention_bias=arch == "qwen2")
    return c


def hf_state(model: TinyLM) -> dict[str, torch.Tensor]:
    state = {("" if k == "lm_head.weight" else "model.") + k: v for k, v in model.state_dict().items()}
    if model.config.tied:
        state.pop("lm_head.weight")
    return state


@torch.no_grad()
def reference(model: TinyLM, prompts: list[list[int]]) -> tuple[list[list[int]], np.ndarray]:
    """Greedy continuations and the logits of each step (the prompt's last position, then each new token's)."""
    continuations, rows = [], []
    for p in prompts:
        ids = list(p)
        for _ in range(NEW_TOKENS):
            logits = model(torch.tensor([ids]))[0][0, -1]
            rows.append(logits.numpy())
            ids.append(int(logits.argmax()))
        continuations.append(ids[len(p):])
    return continuations, np.stack(rows).astype("<f4")


def write_reference(folder: Path, prompts, continuations, logits) -> None:
    (folder / "reference.json").write_text(json.dumps({"prompts": prompts, "greedy": continuations, "rows": len(logits)}))
    (folder / "reference.f32").write_bytes(logits.tobytes())


def build_arch(arch: str, tokenizer_dir: Path, out: Path, seed: int) -> None:
    tok_name, features, st_dtype, gguf_dtype = ARCHS[arch]
    tokenizer = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    tok_config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text())
    ids = list(tokenizer["model"]["vocab"].values()) + [a["id"] for a in tokenizer.get("added_tokens", [])]
    cfg = ArchConfig(vocab_size=max(ids) + 1, d_model=64, n_layers=2, ffn_hidden=128, max_seq_len=128, **features)
    base = random_model(cfg, seed)
    rng = np.random.default_rng(seed)
    normal_ids = sorted(tokenizer["model"]["vocab"].values())
    prompts = [[int(x) for x in rng.choice(normal_ids[300:20000], PROMPT_LEN.get(arch, 12))] for _ in range(2)]
    specials = {a["content"]: a["id"] for a in tokenizer.get("added_tokens", [])}
    bos, eos = specials.get(tok_config.get("bos_token")), specials.get(tok_config.get("eos_token"))
    state = hf_state(base)

    # Hugging Face folder: matrices in st_dtype, norms and biases too (as a bf16 checkpoint has them).
    folder = out / f"{arch}-safetensors"
    folder.mkdir(parents=True)
    stored = {k: round_to(v, st_dtype) for k, v in state.items()}
    tensors = {k: (st_dtype, list(v.shape), encode(v, st_dtype)) for k, v in stored.items()}
    if arch == "llama":  # sharded, with the index Hugging Face writes
        names = list(tensors)
        shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2], "model-00002-of-00002.safetensors": names[len(names) // 2:]}
        for file, part in shards.items():
            write_safetensors(folder / file, {k: tensors[k] for k in part})
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": {k: f for f, part in shards.items() for k in part}}))
    else:
        write_safetensors(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text(json.dumps(hf_config(arch, cfg, bos, eos), indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_dir / name, folder / name)
    write_reference(folder, prompts, *reference(load(cfg, stored), prompts))

    # GGUF: matrices in gguf_dtype, norms and biases F32 (as llama.cpp's convert keeps them).
    folder = out / f"{arch}-gguf"
    folder.mkdir(parents=True)
    gguf_arch = "llama" if arch in ("llama", "mistral") else arch
    stored, entries = {}, []
    for k, v in state.items():
        dtype = gguf_dtype if v.dim() == 2 else "F32"
        stored[k] = round_to(v, dtype)
        w = v
        if gguf_arch == "llama" and k.endswith(("q_proj.weight", "k_proj.weight")):
            w = permute_rope(v, cfg.n_heads if "q_proj" in k else cfg.n_kv_heads)
        entries.append((gguf_name(k), dtype, list(v.shape), encode(w, dtype)))
    if cfg.rope_scaling:
        entries.append(("rope_freqs.weight", "F32", [cfg.head_dim // 2], np.array(llama3_rope_factors(cfg), dtype="<f4").tobytes()))
    a = gguf_arch
    metadata = {
        "general.architecture": a, "general.name": f"tinylm {arch} fixture", "general.alignment": 32,
        f"{a}.context_length": cfg.max_seq_len, f"{a}.embedding_length": cfg.d_model, f"{a}.block_count": cfg.n_layers,
        f"{a}.feed_forward_length": cfg.ffn_hidden, f"{a}.attention.head_count": cfg.n_heads, f"{a}.attention.head_count_kv": cfg.n_kv_heads,
        f"{a}.attention.layer_norm_rms_epsilon": cfg.norm_eps, f"{a}.rope.freq_base": cfg.rope_theta,
        f"{a}.attention.key_length": cfg.head_dim, f"{a}.attention.value_length": cfg.head_dim, f"{a}.rope.dimension_count": cfg.head_dim,
        f"{a}.vocab_size": cfg.vocab_size,
    }
    if cfg.sliding_window:
        metadata[f"{a}.attention.sliding_window"] = cfg.sliding_window
    metadata.update(gguf_vocab(tokenizer, tok_config))
    write_gguf(folder / "model.gguf", metadata, entries)
    write_reference(folder, prompts, *reference(load(cfg, stored), prompts))


def load(cfg: ArchConfig, hf: dict[str, torch.Tensor]) -> TinyLM:
    """A model.py model with these (Hugging Face-named) weights."""
    model = random_model(cfg, 0)
    state = {k.removeprefix("model."): v for k, v in hf.items()}
    if cfg.tied:
        state["lm_head.weight"] = state["embed_tokens.weight"]
    model.load_state_dict(state)
    return model.eval()


def build(llama2_dir: Path, gpt_dir: Path, out: Path, archs=tuple(ARCHS), seed: int = 0) -> Path:
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for arch in archs:
        build_arch(arch, llama2_dir if ARCHS[arch][0] == "llama2" else gpt_dir, tmp, seed)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("llama2_tokenizer_dir")
    ap.add_argument("gpt_tokenizer_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--arch", action="append", choices=list(ARCHS), help="only these architectures (default: all)")
    args = ap.parse_args(argv)
    out = build(Path(args.llama2_tokenizer_dir), Path(args.gpt_tokenizer_dir), Path(args.out_dir), tuple(args.arch or ARCHS))
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p.stat().st_size:>12,}  {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
