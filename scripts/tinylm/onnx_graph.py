"""Build the decoder's ONNX graph directly with onnx.helper (as ONNX Runtime GenAI's model builder does).

torch.onnx.export traces every dynamic shape into Shape/Gather/Unsqueeze/Concat chains: ~1,900 nodes
for 8 layers, and onnxruntime-web pays a dispatch cost per node on every decode step. Written by hand
the same model is ~30 nodes per layer: Reshape targets use 0 ("copy this dimension") and -1, the
causal mask is built once, rotary embeddings use com.microsoft.RotaryEmbedding (positions from
position_ids, so padded batches work), grouped-query attention folds the query heads of a group into
the sequence axis instead of copying K and V per head, and q/k/v and gate/up are one MatMul each.

The cache is copied as little as possible, because onnxruntime-web copies every input and output
between JS and WASM memory on every run: only the new positions' keys and values come back (one
`new_kv` output), attention scores the past and the new keys separately so the cache is never
concatenated inside the graph, and `logits_to_keep` asks for the last positions' logits only (a
prefill needs one row, not one per prompt token). The softmax for sampling is in the graph too
(`probs`, at a per-row `temperature`). Contract: FOLDER_README in folder.py.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .model import TinyLM

F32 = TensorProto.FLOAT
I64 = TensorProto.INT64


class GraphBuilder:
    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str | None = None, outputs: int = 1, domain: str = "", **attrs) -> str | list[str]:
        self.count += 1
        base = name or f"{op_type.lower()}_{self.count}"
        outs = [base] if outputs == 1 else [f"{base}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"n_{base}", domain=domain, **attrs))
        return outs[0] if outputs == 1 else outs


def build_graph(model: TinyLM) -> onnx.ModelProto:
    cfg = model.config
    H, KV, hd, L = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.n_layers
    G = H // KV
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    g = GraphBuilder()

    # Constants shared by every layer.
    emb = g.const("embed_tokens.weight", sd["embed_tokens.weight"])
    inv_freq = 1.0 / (cfg.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    angles = np.arange(cfg.max_seq_len, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos_cache = g.const("rope_cos", np.cos(angles).astype(np.float32))
    sin_cache = g.const("rope_sin", np.sin(angles).astype(np.float32))
    shape_q4 = g.const("shape_q4", np.array([0, 0, H, hd], dtype=np.int64))
    shape_kv4 = g.const("shape_kv4", np.array([0, 0, KV, hd], dtype=np.int64))
    shape_grouped = g.const("shape_grouped", np.array([0, KV, -1, hd], dtype=np.int64))  # [B, KV, G*T, hd]
    shape_heads = g.const("shape_heads", np.array([0, H, -1, hd], dtype=np.int64))  # [B, H, T, hd]
    shape_out = g.const("shape_out", np.array([0, 0, H * hd], dtype=np.int64))

    # Additive attention bias, built once: causal and key-padding masks, repeated for the G query
    # heads of a group ([B, 1, G*T, L], matching the grouped queries below).
    one = g.const("one_i64", np.array(1, dtype=np.int64))
    zero = g.const("zero_i64", np.array(0, dtype=np.int64))
    total_len = g.op("Gather", [g.op("Shape", ["attention_mask"]), one], "total_len")
    new_len = g.op("Gather", [g.op("Shape", ["input_ids"]), one], "new_len")
    past_len = g.op("Sub", [total_len, new_len], "past_len")
    key_pos = g.op("Range", [zero, total_len, one], "key_pos")  # [L]
    query_pos = g.op("Unsqueeze", [g.op("Range", [past_len, total_len, one], "query_pos"), g.const("ax_last", np.array([-1], dtype=np.int64))])  # [T, 1]
    future = g.op("Greater", [key_pos, query_pos], "future")  # [T, L]
    padding = g.op("Equal", [g.op("Unsqueeze", ["attention_mask", g.const("ax_12", np.array([1, 2], dtype=np.int64))]), zero], "padding")  # [B,1,1,L]
    blocked = g.op("Or", [g.op("Unsqueeze", [future, g.const("ax_0", np.array([0], dtype=np.int64))]), padding], "blocked")  # [B,1,T,L]
    neg = g.const("neg_inf", np.array(np.finfo(np.float32).min, dtype=np.float32))
    zero_f = g.const("zero_f", np.array(0.0, dtype=np.float32))
    bias = g.op("Where", [blocked, neg, zero_f], "attn_bias")
    if G > 1:
        bias = g.op("Tile", [bias, g.const("bias_repeats", np.array([1, 1, G, 1], dtype=np.int64))], "attn_bias_grouped")

    split_qkv = g.const("split_qkv", np.array([H * hd, KV * hd, KV * hd], dtype=np.int64))
    split_ffn = g.const("split_ffn", np.array([cfg.ffn_hidden, cfg.ffn_hidden], dtype=np.int64))
    # Attention scores are computed against the past and the new keys separately and the softmax
    # weights sliced back apart, so the cache is never concatenated (copied) inside the graph.
    past_1d = g.op("Unsqueeze", [past_len, g.const("ax_0c", np.array([0], dtype=np.int64))], "past_len_1d")
    axis_last = g.const("axis_last", np.array([-1], dtype=np.int64))
    zero_1d = g.const("zero_1d", np.array([0], dtype=np.int64))
    end_1d = g.const("end_1d", np.array([np.iinfo(np.int64).max], dtype=np.int64))
    new_kv = []

    x = g.op("Gather", [emb, "input_ids"], "embeddings")
    for i in range(L):
        p = f"layers.{i}."
        # MatMul wants [in, out]; projections that read the same input are concatenated along out.
        # The attention scale 1/√hd is folded into the query weights (rotary embedding is linear).
        t = lambda n: sd[f"{p}{n}"].T
        w = lambda name, *mats: g.const(f"{p}{name}.T", np.ascontiguousarray(np.concatenate(mats, axis=1), dtype=np.float32))
        h = g.op("SimplifiedLayerNormalization", [x, g.const(f"{p}input_layernorm.weight", sd[f"{p}input_layernorm.weight"])],
                 f"l{i}_attn_norm", axis=-1, epsilon=cfg.norm_eps)
        qkv = g.op("MatMul", [h, w("self_attn.qkv_proj.weight", t("self_attn.q_proj.weight") * (1.0 / math.sqrt(hd)), t("self_attn.k_proj.weight"), t("self_attn.v_proj.weight"))], f"l{i}_qkv")
        q, k, v = g.op("Split", [qkv, split_qkv], f"l{i}_qkv_split", outputs=3, axis=-1)
        q = g.op("RotaryEmbedding", [q, "position_ids", cos_cache, sin_cache], f"l{i}_q_rot", domain="com.microsoft",
                 interleaved=0, num_heads=H)
        k = g.op("RotaryEmbedding", [k, "position_ids", cos_cache, sin_cache], f"l{i}_k_rot", domain="com.microsoft",
                 interleaved=0, num_heads=KV)
        q4 = g.op("Transpose", [g.op("Reshape", [q, shape_q4])], f"l{i}_q4", perm=[0, 2, 1, 3])  # [B,H,T,hd]
        k4 = g.op("Transpose", [g.op("Reshape", [k, shape_kv4])], f"l{i}_k4", perm=[0, 2, 1, 3])  # [B,KV,T,hd]
        v4 = g.op("Transpose", [g.op("Reshape", [v, shape_kv4])], f"l{i}_v4", perm=[0, 2, 1, 3])
        new_kv += [k4, v4]
        past_k, past_v = f"past_key_values.{i}.key", f"past_key_values.{i}.value"  # [B,KV,P,hd]
        # Query heads h = kv·G + g: fold a group's heads into the sequence axis and attend once per KV head.
        qg = g.op("Reshape", [q4, shape_grouped], f"l{i}_qg")  # [B,KV,G*T,hd], already scaled by 1/√hd
        keys_t = lambda k, name: g.op("Transpose", [k], name, perm=[0, 1, 3, 2])
        scores = g.op("Concat", [g.op("MatMul", [qg, keys_t(past_k, f"l{i}_past_kT")], f"l{i}_scores_past"),
                                 g.op("MatMul", [qg, keys_t(k4, f"l{i}_new_kT")], f"l{i}_scores_new")], f"l{i}_scores", axis=-1)
        probs = g.op("Softmax", [g.op("Add", [scores, bias], f"l{i}_masked")], f"l{i}_probs", axis=-1)  # [B,KV,G*T,L]
        probs_past = g.op("Slice", [probs, zero_1d, past_1d, axis_last], f"l{i}_probs_past")
        probs_new = g.op("Slice", [probs, past_1d, end_1d, axis_last], f"l{i}_probs_new")
        ctx = g.op("Add", [g.op("MatMul", [probs_past, past_v]), g.op("MatMul", [probs_new, v4])], f"l{i}_ctx_sum")
        ctx = g.op("Reshape", [ctx, shape_heads], f"l{i}_ctx")  # [B,H,T,hd]
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), shape_out], f"l{i}_ctx3")
        x = g.op("Add", [x, g.op("MatMul", [ctx, w("self_attn.o_proj.weight", t("self_attn.o_proj.weight"))], f"l{i}_o")], f"l{i}_resid1")
        h = g.op("SimplifiedLayerNormalization", [x, g.const(f"{p}post_attention_layernorm.weight", sd[f"{p}post_attention_layernorm.weight"])],
                 f"l{i}_ffn_norm", axis=-1, epsilon=cfg.norm_eps)
        gate_up = g.op("MatMul", [h, w("mlp.gate_up_proj.weight", t("mlp.gate_proj.weight"), t("mlp.up_proj.weight"))], f"l{i}_gate_up")
        gate, up = g.op("Split", [gate_up, split_ffn], f"l{i}_gate_up_split", outputs=2, axis=-1)
        act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up], f"l{i}_act")
        x = g.op("Add", [x, g.op("MatMul", [act, w("mlp.down_proj.weight", t("mlp.down_proj.weight"))], f"l{i}_down")], f"l{i}_resid2")
    g.op("Concat", new_kv, "new_kv", axis=1)  # [B, 2·L·KV, T, hd]
    # Only the last logits_to_keep positions go through the final norm and the LM head.
    starts = g.op("Neg", ["logits_to_keep"], "keep_from")
    x = g.op("Slice", [x, starts, g.const("slice_end", np.array([np.iinfo(np.int64).max], dtype=np.int64)),
                       g.const("slice_axis", np.array([1], dtype=np.int64))], "kept")
    x = g.op("SimplifiedLayerNormalization", [x, g.const("norm.weight", sd["norm.weight"])], "final_norm", axis=-1, epsilon=cfg.norm_eps)
    head = "lm_head.weight.T"
    g.nodes.append(helper.make_node("Transpose", [emb], [head], perm=[1, 0], name="lm_head_tied"))
    logits = g.op("MatMul", [x, head], "logits")
    # Sampling's softmax, here rather than in JS: one vectorized pass in WASM instead of 8k Math.exp
    # calls per token. Each row has its own temperature (1 for greedy and for log-probabilities).
    temperature = g.op("Unsqueeze", ["temperature", g.const("ax_12t", np.array([1, 2], dtype=np.int64))], "temperature_3d")
    g.op("Softmax", [g.op("Div", [logits, temperature], "scaled_logits")], "probs", axis=-1)

    inputs = [
        helper.make_tensor_value_info("input_ids", I64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", I64, ["batch", "total"]),
        helper.make_tensor_value_info("position_ids", I64, ["batch", "seq"]),
        helper.make_tensor_value_info("logits_to_keep", I64, [1]),
        helper.make_tensor_value_info("temperature", F32, ["batch"]),
    ]
    for i in range(L):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kv}", F32, ["batch", KV, "past", hd]))
    outputs = [
        helper.make_tensor_value_info("logits", F32, ["batch", "kept", cfg.vocab_size]),
        helper.make_tensor_value_info("probs", F32, ["batch", "kept", cfg.vocab_size]),
        helper.make_tensor_value_info("new_kv", F32, ["batch", 2 * L * KV, "seq", hd]),
    ]
    graph = helper.make_graph(g.nodes, "tinylm", inputs, outputs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                          producer_name="tinylm-edge")
    m.ir_version = 8
    return m
