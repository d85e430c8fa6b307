"""The standard decoder contract beside ours, so other tools run the folder (transformers.js, Optimum's runners).

    /usr/bin/python3 -m scripts.tinylm.interop model     # re-lay a folder written by an older export

Our server's graphs (inputs logits_to_keep and temperature, one new_kv output: FOLDER_README in
folder.py) are fast on WebAssembly but no other tool knows them. The standard contract, the one
Optimum exports and transformers.js runs, is: inputs input_ids, attention_mask, position_ids,
past_key_values.{i}.key/value; outputs logits for every position and present.{i}.key/value (past and
new keys concatenated). transformers.js looks for it under fixed names (onnx/model.onnx for fp32,
onnx/model_quantized.onnx for q8), so the standard graphs take those names and ours move beside them
as onnx/<name>.tinylm.onnx.

One copy of the weights per precision: a .tinylm.onnx graph stores no weights of its own. Its
initializers are ONNX external data pointing into the standard graph's file, at the offsets where
that file keeps the same bytes (every runtime reads external data by location, offset and length).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from .folder import FOLDER_README, TINYLM_SUFFIX, file_hashes, quantization_notes

# Tensors smaller than this stay inside the .tinylm graph: not worth an external reference.
SHARE_MIN_BYTES = 1024


class InteropError(ValueError):
    pass


def is_tinylm_contract(m: onnx.ModelProto) -> bool:
    return any(o.name == "new_kv" for o in m.graph.output)


def standard_graph(m: onnx.ModelProto) -> onnx.ModelProto:
    """Our contract (fp32 or int8) → the standard one: logits for every position, present.{i} outputs."""
    if not is_tinylm_contract(m):
        raise InteropError("not a graph in tinylm's contract (no new_kv output)")
    m = copy.deepcopy(m)
    g = m.graph
    producer = {o: n for n in g.node for o in n.output}
    kept = producer["kept"]  # Slice(x, -logits_to_keep): every position keeps its logits instead
    for n in g.node:
        for j, name in enumerate(n.input):
            if name == "kept":
                n.input[j] = kept.input[0]
    layers = sum(1 for i in g.input if i.name.endswith(".key"))
    kv_type = next(i for i in g.input if i.name == "past_key_values.0.key").type
    for i in range(layers):
        for kind, new in (("key", f"l{i}_k4"), ("value", f"l{i}_v4")):
            g.node.append(helper.make_node("Concat", [f"past_key_values.{i}.{kind}", new], [f"present.{i}.{kind}"],
                                           name=f"n_present_{i}_{kind}", axis=2))
    logits = next(o for o in g.output if o.name == "logits")
    logits.type.tensor_type.shape.dim[1].dim_param = "seq"
    outputs = [logits]
    for i in range(layers):
        for kind in ("key", "value"):
            vi = helper.make_value_info(f"present.{i}.{kind}", copy.deepcopy(kv_type))
            vi.type.tensor_type.shape.dim[2].dim_param = "total"
            outputs.append(vi)
    del g.output[:]
    g.output.extend(outputs)
    prune(g)
    return m


def prune(g: onnx.GraphProto) -> None:
    """Drop nodes, inputs and initializers no output depends on (the probs head, logits_to_keep, …)."""
    producer = {o: n for n in g.node for o in n.output}
    needed, stack = set(), [o.name for o in g.output]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        if name in producer:
            stack += [i for i in producer[name].input if i]
    nodes = [n for n in g.node if any(o in needed for o in n.output)]
    del g.node[:]
    g.node.extend(nodes)
    for field in (g.input, g.initializer):
        live = [x for x in field if x.name in needed]
        del field[:]
        field.extend(live)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes, start: int, end: int):
    """(field number, start, end) of each length-delimited field of one message; others skipped."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            yield field, pos, pos + length
            pos += length
        else:
            raise InteropError(f"unexpected protobuf wire type {wire}")


def raw_data_offsets(buf: bytes) -> dict[str, tuple[int, int]]:
    """Initializer name → (offset, length) of its raw_data bytes in a serialized ModelProto."""
    out = {}
    for field, gs, ge in _fields(buf, 0, len(buf)):
        if field != 7:  # ModelProto.graph
            continue
        for f, ts, te in _fields(buf, gs, ge):
            if f != 5:  # GraphProto.initializer
                continue
            name, raw = None, None
            for tf, s, e in _fields(buf, ts, te):
                if tf == 8:  # TensorProto.name
                    name = buf[s:e].decode()
                elif tf == 9:  # TensorProto.raw_data
                    raw = (s, e - s)
            if name is not None and raw is not None:
                out[name] = raw
    return out


def share_weights(m: onnx.ModelProto, standard_file: Path, buf: bytes | None = None) -> onnx.ModelProto:
    """A copy of `m` whose initializers point into `standard_file` wherever it holds the same bytes
    (`buf`: those bytes, when the file is not written yet)."""
    m = copy.deepcopy(m)
    buf = standard_file.read_bytes() if buf is None else buf
    where = raw_data_offsets(buf)
    shared = 0
    for t in m.graph.initializer:
        if t.name not in where or len(t.raw_data) < SHARE_MIN_BYTES:
            continue
        offset, length = where[t.name]
        if buf[offset:offset + length] != t.raw_data:
            continue
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        for key, value in (("location", standard_file.name), ("offset", str(offset)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        shared += length
    if shared == 0:
        raise InteropError(f"{standard_file}: holds none of the graph's weights")
    return m


def split_contracts(graph_file: Path) -> Path | None:
    """Turn one graph of ours into the standard graph (same name) + our graph (.tinylm.onnx) sharing its
    weights. Both are written whole to temporary files first, then renamed into place: the standard
    graph, then ours. A run stopped between the two renames leaves our graph's temporary file beside
    a standard graph, and the next run renames it into place."""
    fast_file = graph_file.with_name(graph_file.name[: -len(".onnx")] + TINYLM_SUFFIX)
    graph_tmp, fast_tmp = graph_file.with_name(graph_file.name + ".tmp"), fast_file.with_name(fast_file.name + ".tmp")
    if fast_file.exists():
        return None  # already split
    m = onnx.load(str(graph_file))
    if not is_tinylm_contract(m):
        if not fast_tmp.exists():
            return None  # a standard graph already (or someone else's)
        os.replace(fast_tmp, fast_file)  # the second rename of a split that was stopped
        return fast_file
    standard = standard_graph(m).SerializeToString()
    graph_tmp.write_bytes(standard)
    fast_tmp.write_bytes(share_weights(m, graph_file, standard).SerializeToString())
    os.replace(graph_tmp, graph_file)
    os.replace(fast_tmp, fast_file)
    return fast_file


def relayout(folder: Path) -> list[Path]:
    """Split every graph of ours in folder/onnx, and record it in config.json and manifest.json. Idempotent."""
    written = [f for f in (split_contracts(p) for p in sorted((folder / "onnx").glob("*.onnx"))
                           if not p.name.endswith(TINYLM_SUFFIX)) if f]
    if not any((folder / "onnx").glob("*" + TINYLM_SUFFIX)):
        raise InteropError(f"{folder}: no graph in tinylm's contract (not a folder our exporter wrote); left as it was")
    if (folder / "README.md").exists():
        (folder / "README.md").write_text(FOLDER_README)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    # transformers.js picks the graph by dtype; the int8 one is the one every folder of ours has.
    config["transformers.js_config"] = {"dtype": "q8"}
    config_path.write_text(json.dumps(config, indent=2))
    ignore = folder / ".assetsignore"
    if ignore.exists() and "onnx/model.tinylm.onnx" not in ignore.read_text().split():
        ignore.write_text(ignore.read_text().replace("onnx/model.onnx\n", "onnx/model.onnx\nonnx/model.tinylm.onnx\n"))
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():  # last: it hashes the files as they now are (a dropped fp32 graph is not listed)
        manifest = json.loads(manifest_path.read_text())
        manifest["quantization"] = quantization_notes(folder, manifest.get("quantization", {}))
        manifest["files"] = file_hashes(folder)
        manifest_path.write_text(json.dumps(manifest, indent=2))
    return written


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="a model folder written by scripts.tinylm.export")
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    try:
        written = relayout(folder)
    except (InteropError, OSError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("\n".join(f"wrote {p}" for p in written) or f"{folder}: already in both contracts")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
