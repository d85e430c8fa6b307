import json
from pathlib import Path

import numpy as np
import pytest
import torch

from scripts.tinylm.config import ModelConfig
from scripts.tinylm.cpu import tune_malloc
from scripts.tinylm.model import TinyLM

tune_malloc()  # as the pipeline's entry points do
ROOT = Path(__file__).resolve().parents[3]
# Real text: a small slice of the corpus, encoded with the compact 8k tokenizer (test/fixtures/README.md).
TINY_SHARDS = ROOT / "test" / "fixtures" / "shards-8k-tiny"
TINY_TOKENIZER = ROOT / "test" / "fixtures" / "tiny-model"

torch.set_num_threads(1)


def tiny_model_config(**overrides) -> ModelConfig:
    values = dict(vocab_size=8192, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=64, max_seq_len=128)
    values.update(overrides)
    return ModelConfig(**values)


@pytest.fixture
def tiny_model() -> TinyLM:
    torch.manual_seed(0)
    return TinyLM(tiny_model_config(vocab_size=97)).eval()


def write_shards(root: Path, splits: dict[str, np.ndarray], vocab_size: int, eot_id: int) -> Path:
    """A pre-tokenized data folder in the format of npm run corpus:encode."""
    index = {"dtype": "uint16", "vocab_size": vocab_size, "eot_id": eot_id, "splits": {}}
    for split, tokens in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        tokens.astype(np.uint16).tofile(root / split / "part.bin")
        index["splits"][split] = [{"shard": f"{split}/part", "tokens": int(len(tokens)), "text_bytes": int(len(tokens) * 4)}]
    (root / "index.json").write_text(json.dumps(index))
    return root


def write_config(path: Path, data_dir: Path, out_dir: Path, model: dict | None = None, **train) -> Path:
    model = model or dict(vocab_size=8192, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=64, max_seq_len=64)
    t = dict(data_dir=str(data_dir), out_dir=str(out_dir), seq_len=32, batch_size=4, max_steps=6, lr=3e-3,
             min_lr=3e-4, warmup_steps=2, eval_interval=3, eval_batches=2, log_interval=1, checkpoint_interval=100,
             device="cpu", threads=1)
    t.update(train)

    def fmt(v):
        return json.dumps(v) if not isinstance(v, bool) else str(v).lower()

    text = "[model]\n" + "".join(f"{k} = {fmt(v)}\n" for k, v in model.items())
    text += "\n[train]\n" + "".join(f"{k} = {fmt(v)}\n" for k, v in t.items())
    path.write_text(text)
    return path
