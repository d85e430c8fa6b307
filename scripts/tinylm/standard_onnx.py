"""A checkpoint fixture (checkpoints.py) as the ONNX decoders a hub ships: the fixture for lifting
standard graphs onto our kernels (src/formats/onnx-lift.ts).

    /usr/bin/python3 -m scripts.tinylm.standard_onnx CHECKPOINT_DIR OUT_DIR

CHECKPOINT_DIR is one `<arch>-safetensors` folder of checkpoints.py; OUT_DIR gets its config.json,
tokenizer files and PyTorch reference (the same weights, so the same logits), and
  onnx/model.onnx            the fp32 graph as Optimum exports <Arch>ForCausalLM: torch.onnx.export of
                             the module tree with the decoder under `model` and the head at the top
                             (nodes /model/layers.0/self_attn/q_proj/MatMul, /lm_head/MatMul; projection
                             weights folded to [in, out] initializers with anonymous names onnx::MatMul_N;
                             Hugging Face's input and output names);
  onnx/model_quantized.onnx  that graph as onnxruntime.quantization.quantize_dynamic rewrites it with
                             weight_type=QUInt8 (per tensor, asymmetric: a uint8 zero point), its node
                             and initializer names: every MatMul on a constant weight becomes
                             DynamicQuantizeLinear (one per activation, shared) → MatMulInteger → Cast →
                             Mul by the product of the two scales; the embedding's Gather reads a uint8
                             table and is followed by DequantizeLinear;
  onnx/model_fused_norms.onnx  the quantized graph with every RMSNorm fused into one
                             SimplifiedLayerNormalization node, as onnxruntime's transformer optimizer
                             writes it;
  onnx/model_hard_sigmoid.onnx  the quantized graph with layer 0's SiLU gate made HardSigmoid · x, an
                             activation our kernels do not compute (the lifter must refuse it).
"""
from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from .checkpoints import ArchConfig, load
from .foreign import HuggingFaceNames, export_graph


class OptimumLayout(HuggingFaceNames):
    """<Arch>ForCausalLM's module tree: the decoder as `model`, the LM head beside it as `lm_head`."""

    def __init__(self, model):
        super().__init__(model)
        self.lm_head = model.lm_head  # for a tied model, the embedding's parameter (as Hugging Face ties it)
        model.lm_head = torch.nn.Identity()

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        hidden, *presents = super().forward(input_ids, attention_mask, position_ids, *past_flat)
        return (self.lm_head(hidden), *presents)


def read_safetensors(folder: Path) -> dict[str, torch.Tensor]:
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    out = {}
    for file in files:
        raw = (folder / file).read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        for name, e in header.items():
            if name == "__metadata__":
                continue
            begin, end = e["data_offsets"]
            data = bytearray(raw[8 + n + begin:8 + n + end])
            out[name] = torch.frombuffer(data, dtype=dtypes[e["dtype"]]).reshape(e["shape"]).float()
    return out


def arch_config(c: dict) -> ArchConfig:
    return ArchConfig(
        vocab_size=c["vocab_size"], d_model=c["hidden_size"], n_layers=c["num_hidden_layers"], n_heads=c["num_attention_heads"],
        n_kv_heads=c["num_key_value_heads"], ffn_hidden=c["intermediate_size"], max_seq_len=c["max_position_embeddings"],
        rope_theta=c["rope_theta"], norm_eps=c["rms_norm_eps"], head_dim_override=c.get("head_dim", 0), qkv_bias=c["model_type"] == "qwen2",
        qk_norm=c["model_type"] == "qwen3", sliding_window=c.get("sliding_window"), rope_scaling=c.get("rope_scaling"),
        tied=c["tie_word_embeddings"])


def quantize_uint8(w: np.ndarray) -> tuple[np.ndarray, np.float32, np.uint8]:
    """onnxruntime's quantize_data for QUInt8, asymmetric: the range widened to hold 0, which maps to the zero point."""
    rmin, rmax = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    scale = np.float32((rmax - rmin) / 255 if rmax > rmin else 1.0)
    zero = np.uint8(np.clip(np.round(-rmin / scale), 0, 255))
    q = np.clip(np.round(w / scale) + zero, 0, 255).astype(np.uint8)
    return q, scale, zero


def quantize_dynamic(m: onnx.ModelProto) -> onnx.ModelProto:
    """quantize_dynamic(weight_type=QUInt8)'s rewrite of MatMul and Gather on constant float weights, with its names."""
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    nodes, added, used, activations = [], [], set(), {}

    def weight(name: str) -> tuple[str, str, str]:
        q, scale, zero = quantize_uint8(numpy_helper.to_array(inits[name]).astype(np.float32))
        added.extend([numpy_helper.from_array(q, name + "_quantized"), numpy_helper.from_array(np.array(scale), name + "_scale"),
                      numpy_helper.from_array(np.array(zero), name + "_zero_point")])
        used.add(name)
        return name + "_quantized", name + "_scale", name + "_zero_point"

    for n in g.node:
        w = inits.get(n.input[1]) if n.op_type == "MatMul" else inits.get(n.input[0]) if n.op_type == "Gather" else None
        if w is None or len(w.dims) != 2 or w.data_type != TensorProto.FLOAT:
            nodes.append(n)
            continue
        y = n.output[0]
        if n.op_type == "Gather":
            wq, ws, wz = weight(n.input[0])
            nodes.append(helper.make_node("Gather", [wq, n.input[1]], [y + "_quantized"], name=n.name))
            nodes.append(helper.make_node("DequantizeLinear", [y + "_quantized", ws, wz], [y], name=y + "_DequantizeLinear"))
            continue
        x = n.input[0]
        if x not in activations:  # one DynamicQuantizeLinear per activation, shared by the MatMuls reading it
            activations[x] = (x + "_quantized", x + "_scale", x + "_zero_point")
            nodes.append(helper.make_node("DynamicQuantizeLinear", [x], list(activations[x]), name=x + "_QuantizeLinear"))
        xq, xs, xz = activations[x]
        wq, ws, wz = weight(n.input[1])
        name = n.name + "_quant"
        nodes += [
            helper.make_node("MatMulInteger", [xq, wq, xz, wz], [y + "_output_quantized"], name=name),
            helper.make_node("Cast", [y + "_output_quantized"], [y + "_output_quantized_cast_output"], name=y + "_output_quantized_cast", to=TensorProto.FLOAT),
            helper.make_node("Mul", [xs, ws], [name + "_scales_mul:0"], name=name + "_scales_mul"),
            helper.make_node("Mul", [y + "_output_quantized_cast_output", name + "_scales_mul:0"], [y], name=name + "_output_scale_mul"),
        ]
    del g.node[:]
    g.node.extend(nodes)
    kept = [i for i in g.initializer if i.name not in used]
    del g.initializer[:]
    g.initializer.extend(kept + added)
    return m


def fuse_norms(m: onnx.ModelProto, eps: float) -> onnx.ModelProto:
    """Each traced RMSNorm (Cast → Pow → ReduceMean → Add ε → Sqrt → Div → Mul → Mul by the weight) as
    SimplifiedLayerNormalization(x, weight); the Cast stays (the residual reads its output)."""
    g = m.graph
    scopes = {n.name.rsplit("/", 1)[0] for n in g.node if n.op_type == "ReduceMean"}
    nodes = []
    for n in g.node:
        scope = n.name.rsplit("/", 1)[0]
        if scope not in scopes or n.op_type not in ("Constant", "Pow", "ReduceMean", "Add", "Sqrt", "Div", "Mul"):
            nodes.append(n)  # the Cast, and DynamicQuantizeLinear on the norm's output (named in its scope)
        elif n.name == scope + "/Mul_1":  # the weight's Mul: its output is the norm's
            x = next(c for c in g.node if c.name == scope + "/Cast").output[0]
            nodes.append(helper.make_node("SimplifiedLayerNormalization", [x, n.input[1]], list(n.output), name=scope + "/SimplifiedLayerNormalization",
                                          axis=-1, epsilon=eps, stash_type=1))
    del g.node[:]
    g.node.extend(nodes)
    return m


def hard_sigmoid_gate(m: onnx.ModelProto) -> onnx.ModelProto:
    gate = next(n for n in m.graph.node if n.name == "/model/layers.0/mlp/Sigmoid")
    gate.op_type = "HardSigmoid"
    return m


def build(checkpoint: Path, out: Path) -> Path:
    config = json.loads((checkpoint / "config.json").read_text())
    cfg = arch_config(config)
    model = load(cfg, read_safetensors(checkpoint))
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "onnx").mkdir(parents=True)
    with torch.no_grad():
        export_graph(model, tmp / "onnx" / "model.onnx", wrapper=OptimumLayout(model))
    quantized = quantize_dynamic(onnx.load(str(tmp / "onnx" / "model.onnx")))
    onnx.save(quantized, str(tmp / "onnx" / "model_quantized.onnx"))
    onnx.save(fuse_norms(onnx.load(str(tmp / "onnx" / "model_quantized.onnx")), cfg.norm_eps), str(tmp / "onnx" / "model_fused_norms.onnx"))
    onnx.save(hard_sigmoid_gate(quantized), str(tmp / "onnx" / "model_hard_sigmoid.onnx"))
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "reference.json", "reference.f32"):
        shutil.copy(checkpoint / name, tmp / name)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint_dir")
    ap.add_argument("out_dir")
    args = ap.parse_args(argv)
    out = build(Path(args.checkpoint_dir), Path(args.out_dir))
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p.stat().st_size:>12,}  {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
