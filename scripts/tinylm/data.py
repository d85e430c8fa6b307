"""Pre-tokenized shards (written by `npm run corpus:encode`), memory-mapped, cut into fixed windows.

A split is the concatenation of its shards. Window k covers tokens [k*seq_len, (k+1)*seq_len + 1):
inputs are the first seq_len tokens and targets the last seq_len. A batch is a fixed group of windows
chosen by a seeded permutation, so a batch is identified by its index: the data position in a
checkpoint is just the number of batches consumed, and multiple-round training can list batches.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


class DataError(ValueError):
    pass


class TokenSplit:
    def __init__(self, data_dir: str | Path, split: str):
        self.dir = Path(data_dir)
        index_path = self.dir / "index.json"
        try:
            self.index = json.loads(index_path.read_text())
        except FileNotFoundError:
            raise DataError(f"{index_path}: not found (write the shards with npm run corpus:encode)") from None
        except json.JSONDecodeError as err:
            raise DataError(f"{index_path}: not valid JSON ({err})") from None
        entries = self.index.get("splits", {}).get(split)
        if not entries:
            raise DataError(f"{index_path}: no shards for split {split!r}")
        self.vocab_size = int(self.index["vocab_size"])
        self.eot_id = int(self.index["eot_id"])
        dtype = {"uint16": np.uint16, "uint32": np.uint32}[self.index["dtype"]]
        self.shards = []
        for e in entries:
            path = self.dir / f"{e['shard']}.bin"
            if not path.exists():
                raise DataError(f"{path}: shard listed in index.json is missing")
            arr = np.memmap(path, dtype=dtype, mode="r")
            if len(arr) != e["tokens"]:
                raise DataError(f"{path}: holds {len(arr)} tokens, index.json says {e['tokens']}")
            self.shards.append(arr)
        self.offsets = np.cumsum([0] + [len(s) for s in self.shards])
        self.num_tokens = int(self.offsets[-1])
        self.text_bytes = sum(e["text_bytes"] for e in entries)

    def tokens(self, start: int, length: int) -> np.ndarray:
        """Tokens [start, start + length) across shard boundaries."""
        out = np.empty(length, dtype=np.int64)
        filled = 0
        while filled < length:
            pos = start + filled
            s = int(np.searchsorted(self.offsets, pos, side="right") - 1)
            local = pos - self.offsets[s]
            take = min(length - filled, len(self.shards[s]) - local)
            out[filled:filled + take] = self.shards[s][local:local + take]
            filled += take
        return out

    def num_windows(self, seq_len: int) -> int:
        return (self.num_tokens - 1) // seq_len

    def window_batch(self, windows: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.stack([self.tokens(int(w) * seq_len, seq_len + 1) for w in windows])
        x = torch.from_numpy(rows[:, :-1].copy())
        y = torch.from_numpy(rows[:, 1:].copy())
        return x, y


class BatchPlan:
    """The seeded order of training batches: batch i of epoch e is a fixed set of windows.

    grouping "shuffled": each batch takes windows from anywhere in the split (batch losses all look
    alike). "contiguous": each batch is a run of consecutive windows — one stretch of one book, in a
    shuffled order of runs — so batch losses differ as books do, which is what loss-weighted round-2
    sampling needs to have anything to choose between."""

    def __init__(self, split: TokenSplit, seq_len: int, batch_size: int, seed: int, grouping: str = "shuffled"):
        if grouping not in ("shuffled", "contiguous"):
            raise DataError(f"batch grouping must be shuffled or contiguous, not {grouping!r}")
        self.grouping = grouping
        self.split, self.seq_len, self.batch_size, self.seed = split, seq_len, batch_size, seed
        self.windows = split.num_windows(seq_len)
        if self.windows < batch_size:
            raise DataError(
                f"{split.dir}: {split.num_tokens} tokens make only {self.windows} windows of {seq_len}; "
                f"a batch needs {batch_size}"
            )
        self.batches_per_epoch = self.windows // batch_size
        self._epoch, self._order = -1, None

    def windows_of(self, batch: int) -> np.ndarray:
        epoch, i = divmod(batch, self.batches_per_epoch)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order = rng.permutation(self.windows) if self.grouping == "shuffled" else rng.permutation(self.batches_per_epoch)
            self._epoch = epoch
        if self.grouping == "contiguous":
            start = int(self._order[i]) * self.batch_size
            return np.arange(start, start + self.batch_size)
        return self._order[i * self.batch_size:(i + 1) * self.batch_size]

    def batch(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split.window_batch(self.windows_of(batch), self.seq_len)
