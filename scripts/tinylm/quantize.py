"""Weight-only int8 for onnxruntime-web's WebAssembly backend.

Every MatMul with a constant weight becomes com.microsoft DynamicQuantizeMatMul (activations quantized
on the fly, weights int8 with one scale per output column). Measured with ort-web 1.30 that decodes as
fast as fp32 at a quarter of the size, while int4 MatMulNBits is ~10× slower on wasm.

Weights use 7 bits (±63), not 8: native onnxruntime's u8×s8 kernels on AVX2 machines without VNNI
saturate intermediate sums for full-range int8 weights and give wrong results; 7-bit weights are exact
there, and the same file then gives the same answers on ort-web and ort-node.

The tied embedding is stored once, as the LM head's int8 weight [d, vocab]; the token lookup gathers
from its transpose (folded once at session start) and rescales with the per-token scale.

The LM head itself runs in fp32 on int8 storage: its weight is Cast(int8) * scale, which ONNX Runtime
constant-folds once at session start. DynamicQuantizeMatMul with one activation row and 8k output
columns is slow on wasm (~0.45 ms of a 1.6 ms decode step for the shipped model); the fp32 head
costs vocab × d × 4 bytes more memory (6 MB at 8k × 192), not more download.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

QMAX = 63


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-column int8: w ≈ q * scale, q in [-63, 63]."""
    scale = np.abs(w).max(axis=0) / QMAX
    scale[scale == 0] = 1.0
    q = np.clip(np.round(w / scale), -QMAX, QMAX).astype(np.int8)
    return q, scale.astype(np.float32)


def quantize_model(model: onnx.ModelProto, embedding_name: str, lm_head_name: str) -> onnx.ModelProto:
    """A copy of the fp32 graph with int8 weights; embedding_name/lm_head_name are the tied initializers."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_inits: list[onnx.TensorProto] = []
    drop = set()
    zero = helper.make_tensor("q_zero_point", TensorProto.INT8, [], [0])
    new_inits.append(zero)
    nodes = []
    for node in graph.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        if w is None or len(w.dims) != 2:
            nodes.append(node)
            continue
        q, scale = quantize_columns(numpy_helper.to_array(w).astype(np.float32))
        qname, sname = f"{w.name}_int8", f"{w.name}_scale"
        if qname not in {i.name for i in new_inits}:
            new_inits += [numpy_helper.from_array(q, qname), numpy_helper.from_array(scale, sname)]
        drop.add(w.name)
        if w.name == lm_head_name:  # fp32 on int8 storage, dequantized once at session start
            nodes += [helper.make_node("Cast", [qname], [f"{w.name}_cast"], to=TensorProto.FLOAT, name=node.name + "_cast"),
                      helper.make_node("Mul", [f"{w.name}_cast", sname], [f"{w.name}_f32"], name=node.name + "_dequantize"),
                      helper.make_node("MatMul", [node.input[0], f"{w.name}_f32"], list(node.output), name=node.name)]
            continue
        nodes.append(helper.make_node("DynamicQuantizeMatMul", [node.input[0], qname, sname, "q_zero_point"],
                                      list(node.output), name=node.name + "_q", domain="com.microsoft"))
    # Token lookup from the LM head's int8 weight: Gather(Transpose(Wq)) * scale[token].
    head_q, head_s = f"{lm_head_name}_int8", f"{lm_head_name}_scale"
    if head_q not in {i.name for i in new_inits}:
        raise ValueError(f"LM head weight {lm_head_name!r} was not quantized: is it a MatMul weight?")
    emb_nodes = [
        helper.make_node("Transpose", [head_q], ["emb_table_int8"], perm=[1, 0], name="emb_transpose"),
    ]
    for node in nodes:
        if node.op_type == "Gather" and node.input[0] == embedding_name:
            out = node.output[0]
            emb_nodes += [
                helper.make_node("Gather", ["emb_table_int8", node.input[1]], [out + "_int8"], name=node.name + "_q"),
                helper.make_node("Cast", [out + "_int8"], [out + "_f"], to=TensorProto.FLOAT, name=node.name + "_cast"),
                helper.make_node("Gather", [head_s, node.input[1]], [out + "_s"], name=node.name + "_scale"),
                helper.make_node("Unsqueeze", [out + "_s", "emb_unsqueeze_axis"], [out + "_s2"], name=node.name + "_unsq"),
                helper.make_node("Mul", [out + "_f", out + "_s2"], [out], name=node.name + "_mul"),
            ]
            drop.add(embedding_name)
        else:
            emb_nodes.append(node)
    new_inits.append(helper.make_tensor("emb_unsqueeze_axis", TensorProto.INT64, [1], [-1]))
    del graph.node[:]
    graph.node.extend(emb_nodes)
    kept = [i for i in graph.initializer if i.name not in drop]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model
