"""Export a checkpoint to a Hugging Face-style model folder with ONNX graphs for onnxruntime-web.

    /usr/bin/python3 -m scripts.tinylm.export runs/shipped-cpu/final.pt build/tokenizer-8k model \
        [--name tinylm-edge-5m] [--eval results.json]

(There is no parity option here: `npm run export` runs this, then the TypeScript parity check against
parity/ and on held-out text, its `--val-data`.)

Writes config.json, generation_config.json, tokenizer.json, tokenizer_config.json (with the chat
template), onnx/model.onnx (fp32) and onnx/model_quantized.onnx (int8) in the standard decoder contract
(transformers.js, Optimum), the same graphs in our server's contract beside them
(onnx/*.tinylm.onnx, weights shared: interop.py), parity/ (PyTorch reference logits for the
TypeScript parity test) and manifest.json (sha256 of every file but MODEL_CARD.md and loss-curve.svg,
which a re-export keeps and later steps rewrite). The folder is written beside the target and renamed
into place, so a failed export leaves nothing half-written.

Our contract: inputs input_ids [batch, seq], attention_mask [batch, past + seq], position_ids
[batch, seq], logits_to_keep [1] (all int64), temperature [batch] (float), past_key_values.{i}.key/.value
[batch, kv_heads, past, head_dim]; outputs logits and probs [batch, logits_to_keep, vocab], new_kv
[batch, 2·layers·kv_heads, seq, head_dim]. The standard one: FOLDER_README in folder.py.
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
from onnx import numpy_helper

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .folder import FOLDER_README, LATER_FILES, file_hashes, quantization_notes
from .model import TinyLM
from .interop import split_contracts
from .onnx_graph import build_graph
from .quantize import quantize_model
from .progress import Progress

# A plain chat template: role headers on their own line, messages separated by the end-of-text token.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)




class ExportError(ValueError):
    pass


def quantize_file(fp32: Path, out: Path, emb: str, head: str) -> None:
    """Quantize from the torch graph's layout: give the LM head back its own initializer first."""
    m = onnx.load(str(fp32))
    table = numpy_helper.to_array(next(i for i in m.graph.initializer if i.name == emb))
    m.graph.node.remove(next(n for n in m.graph.node if n.name == "lm_head_tied"))
    m.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(table.T), head))
    onnx.save(quantize_model(m, emb, head), str(out))


@torch.no_grad()
def parity_reference(model: TinyLM, prompts: list[list[int]], eos_id: int, steps: int = 3, greedy_len: int = 24) -> dict:
    """PyTorch logits for prefill + decode steps, a left-padded batch of two, and greedy continuations."""
    model.eval()
    rows, cases = [], []

    def keep(logits_row: torch.Tensor) -> int:
        rows.append(logits_row.float().numpy())
        return len(rows) - 1

    for ids in prompts:  # one sequence: prefill, then greedy decode steps through the cache
        logits, _, past = model(torch.tensor([ids]))
        case = {"kind": "single", "prompt": ids, "steps": [{"input": ids, "row": keep(logits[0, -1])}]}
        for _ in range(steps):
            nxt = int(logits[0, -1].argmax())
            logits, _, past = model(torch.tensor([[nxt]]), past=past)
            case["steps"].append({"input": [nxt], "row": keep(logits[0, -1])})
        cases.append(case)
    a, b = prompts[0], prompts[1][: max(1, len(prompts[0]) - 3)]
    width = max(len(a), len(b))
    ids = torch.tensor([[0] * (width - len(a)) + a, [0] * (width - len(b)) + b])
    mask = torch.tensor([[0] * (width - len(a)) + [1] * len(a), [0] * (width - len(b)) + [1] * len(b)])
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    logits, _, past = model(ids, position_ids=pos, attention_mask=mask)
    batch = {"kind": "batch", "input_ids": ids.tolist(), "attention_mask": mask.tolist(),
             "steps": [{"rows": [keep(logits[0, -1]), keep(logits[1, -1])]}]}
    for _ in range(steps - 1):
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        mask = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1)
        pos = pos[:, -1:] + 1
        logits, _, past = model(nxt, position_ids=pos, attention_mask=mask, past=past)
        batch["steps"].append({"input": nxt[:, 0].tolist(), "rows": [keep(logits[0, -1]), keep(logits[1, -1])]})
    cases.append(batch)
    greedy = [{"prompt": p, "tokens": model.generate(p, greedy_len, temperature=0, eos_id=eos_id)} for p in prompts]
    return {"cases": cases, "greedy": greedy, "logits": np.stack(rows).astype("<f4")}


def export(ckpt_path: str, tokenizer_dir: str, out_dir: str, name: str, eval_path: str = "", prompts=None) -> Path:
    ckpt = load_checkpoint(ckpt_path)
    model = model_from_checkpoint(ckpt, ckpt_path).eval()
    cfg = model.config
    tok_dir = Path(tokenizer_dir)
    try:
        tokenizer = json.loads((tok_dir / "tokenizer.json").read_text())
        tok_config = json.loads((tok_dir / "tokenizer_config.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ExportError(f"{tok_dir}: cannot read tokenizer.json/tokenizer_config.json ({err})") from None
    vocab = tokenizer["model"]["vocab"]
    tok_size = max(vocab.values()) + 1
    if tok_size != cfg.vocab_size:
        raise ExportError(f"vocabulary mismatch: tokenizer {tok_dir} has {tok_size} tokens, checkpoint {ckpt_path} has {cfg.vocab_size}")
    specials = {a["content"]: a["id"] for a in tokenizer.get("added_tokens", [])}
    eos_id = specials["<|endoftext|>"]
    # Chat turns reuse special tokens the vocabulary already has when possible; otherwise plain text markers.
    chat_template = CHAT_TEMPLATE if "<|im_start|>" in specials else (
        "{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n\n{% endfor %}"
        "{% if add_generation_prompt %}Assistant:{% endif %}")

    out = Path(out_dir)
    tmp = out.with_name(out.name + ".export-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "onnx").mkdir(parents=True)
    (tmp / "parity").mkdir()
    progress = Progress("export", 4, "steps")  # graph, int8 graph, PyTorch reference, folder
    onnx.save(build_graph(model), str(tmp / "onnx" / "model.onnx"))
    progress.update(1)
    emb, head = "embed_tokens.weight", "lm_head.weight.T"
    quantize_file(tmp / "onnx" / "model.onnx", tmp / "onnx" / "model_quantized.onnx", emb, head)
    for graph in ("model.onnx", "model_quantized.onnx"):  # standard contract under the standard names, ours beside
        split_contracts(tmp / "onnx" / graph)
    progress.update(2)

    prompts = prompts or [[eos_id] + list(range(300, 312)), [eos_id] + list(range(1000, 1009))]
    ref = parity_reference(model, prompts, eos_id)
    progress.update(3)
    ref["logits"].tofile(tmp / "parity" / "logits.f32")
    (tmp / "parity" / "cases.json").write_text(json.dumps({"vocab_size": cfg.vocab_size, "cases": ref["cases"],
                                                           "greedy": ref["greedy"]}))

    shutil.copy(tok_dir / "tokenizer.json", tmp / "tokenizer.json")
    if (tok_dir / "vocab_map.json").exists():
        shutil.copy(tok_dir / "vocab_map.json", tmp / "vocab_map.json")
    tok_config = {**tok_config, "model_max_length": cfg.max_seq_len, "chat_template": chat_template}
    (tmp / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2))
    hf_config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": cfg.d_model,
        "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim, "intermediate_size": cfg.ffn_hidden, "vocab_size": cfg.vocab_size,
        "rope_theta": cfg.rope_theta, "rms_norm_eps": cfg.norm_eps, "max_position_embeddings": cfg.max_seq_len,
        "tie_word_embeddings": True, "hidden_act": "silu", "bos_token_id": eos_id, "eos_token_id": eos_id,
        "torch_dtype": "float32", "transformers.js_config": {"dtype": "q8"},
    }
    (tmp / "config.json").write_text(json.dumps(hf_config, indent=2))
    (tmp / "README.md").write_text(FOLDER_README)
    (tmp / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": eos_id, "eos_token_id": eos_id, "do_sample": True, "temperature": 0.8, "top_p": 0.95,
         "max_length": cfg.max_seq_len}, indent=2))
    evals = json.loads(Path(eval_path).read_text()) if eval_path else None
    # Workers static assets: upload only what the server reads (the fp32 graph is for parity checks).
    (tmp / ".assetsignore").write_text("onnx/model.onnx\nonnx/model.tinylm.onnx\nparity\nvocab_map.json\nREADME.md\nMODEL_CARD.md\nloss-curve.svg\n")
    manifest = {
        "name": name,
        "architecture": {k: v for k, v in vars(cfg).items()},
        "parameters": {"total": model.num_params(), "embedding": cfg.vocab_size * cfg.d_model,
                       "non_embedding": model.num_params(embedding=False),
                       "embedding_share": round(cfg.vocab_size * cfg.d_model / model.num_params(), 4)},
        "vocabulary": {"size": cfg.vocab_size, "parent": "cl100k_base (100,256 tokens)", "eos_id": eos_id},
        "quantization": quantization_notes(tmp, {}),
        "training": {k: ckpt.get(k) for k in ("tokens_seen", "val_loss", "data_dir", "rounds", "inherited") if k in ckpt},
        "eval": evals,
        "files": file_hashes(tmp),  # every file written above, as shipped (npm run export drops fp32's entries with the files)
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    for kept in LATER_FILES:  # hand-written or drawn from logs: survive a re-export
        if (out / kept).exists():
            shutil.copy(out / kept, tmp / kept)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    progress.done()
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("tokenizer_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--name", default="tinylm-edge")
    ap.add_argument("--eval", default="", help="evaluation results JSON to record in the manifest")
    args = ap.parse_args(argv)
    try:
        out = export(args.checkpoint, args.tokenizer_dir, args.out_dir, args.name, args.eval)
    except (ExportError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p.stat().st_size:>10,}  {p}")
    return 0


if __name__ == "__main__":
    from .cpu import tune_malloc

    tune_malloc()  # before torch allocates: see cpu.py
    sys.exit(main(sys.argv[1:]))
