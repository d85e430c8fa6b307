import json

import numpy as np

from scripts.tinylm import travel
from .conftest import ROOT

FIX = ROOT / "test" / "fixtures"


def first_book(data_dir, tokenizer_json):
    index = json.loads((data_dir / "index.json").read_text())
    ids = np.fromfile(data_dir / f"{index['splits']['val'][0]['shard']}.bin",
                      dtype={"uint16": np.uint16, "uint32": np.uint32}[index["dtype"]]).astype(np.int64)
    end = int(np.flatnonzero(ids == index["eot_id"])[0])
    return travel.BookDecoder(travel.vocab_bytes(json.loads(tokenizer_json.read_text()))).text(ids[:end])


def test_compact_ids_decode_to_the_same_book_as_the_parent_ids():
    """What unpack re-encodes for the parent: the exact text of each book, from the compact ids."""
    compact = first_book(FIX / "shards-8k-tiny", FIX / "tiny-model" / "tokenizer.json")
    parent = first_book(FIX / "shards-parent-tiny", ROOT / travel.PARENT_TOKENIZER)
    assert len(parent) > 1000 and compact.startswith(parent)  # the fixtures clip books at different lengths


def write_books(root, books_per_split, eot=8187):
    """A data folder like npm run corpus:encode writes: per shard, books each ending with end-of-text."""
    rng = np.random.default_rng(0)
    index = {"dtype": "uint16", "vocab_size": 8192, "eot_id": eot, "splits": {}}
    for split, lengths in books_per_split.items():
        (root / split).mkdir(parents=True)
        books = [np.append(rng.integers(0, eot, n - 1), eot) for n in lengths]
        ids = np.concatenate(books).astype(np.uint16)
        ids.tofile(root / split / "part.bin")
        starts = np.cumsum([0] + lengths[:-1])
        (root / split / "part.json").write_text(json.dumps(
            {"documents": [[int(a), n, f"book{k}"] for k, (a, n) in enumerate(zip(starts, lengths))]}))
        index["splits"][split] = [{"shard": f"{split}/part", "tokens": len(ids), "text_bytes": 4 * len(ids)}]
    (root / "index.json").write_text(json.dumps(index))
    return root


def test_pack_keeps_whole_books_and_unpack_restores_them(tmp_path):
    data = write_books(tmp_path / "data", {"train": [100, 200, 300], "val": [50, 70]})
    travel.pack(tmp_path / "gpu", data, FIX / "tiny-model", FIX / "shards-parent-tiny", [], train_tokens=350)
    travel.unpack(tmp_path / "gpu", tmp_path / "out", parent=False)
    packed = json.loads((tmp_path / "out" / "compact-8k" / "index.json").read_text())
    assert [e["tokens"] for e in packed["splits"]["train"]] == [300]  # two whole books; the third would not fit
    assert [e["tokens"] for e in packed["splits"]["val"]] == [120]  # validation travels whole
    for split in ("train", "val"):
        got = np.fromfile(tmp_path / "out" / "compact-8k" / split / "part.bin", dtype=np.uint16)
        assert (got == np.fromfile(data / split / "part.bin", dtype=np.uint16)[:len(got)]).all()
    assert (tmp_path / "out" / "tokenizer-8k" / "vocab_map.json").exists()


def test_packed_parent_shards_need_no_rebuild_and_a_second_unpack_is_skipped(tmp_path, capsys):
    travel.pack(tmp_path / "gpu", FIX / "shards-8k-tiny", FIX / "tiny-model", FIX / "shards-parent-tiny", [],
                train_tokens=10**9, parent_shards=True, parent_tokenizer=ROOT / travel.PARENT_TOKENIZER)
    travel.unpack(tmp_path / "gpu", tmp_path / "out")  # no tokenizers/tiktoken needed
    index = json.loads((FIX / "shards-parent-tiny" / "index.json").read_text())
    assert json.loads((tmp_path / "out" / "parent" / "index.json").read_text()) == index
    shard = index["splits"]["val"][0]["shard"] + ".bin"
    assert (tmp_path / "out" / "parent" / shard).read_bytes() == (FIX / "shards-parent-tiny" / shard).read_bytes()
    capsys.readouterr()
    before = (tmp_path / "out" / "parent" / shard).stat().st_mtime_ns
    travel.unpack(tmp_path / "gpu", tmp_path / "out")
    assert "already_unpacked" in capsys.readouterr().out
    assert (tmp_path / "out" / "parent" / shard).stat().st_mtime_ns == before
    with open(tmp_path / "gpu" / "parent-val-head.u32", "ab") as f:  # another pack: unpacked again
        f.write(b"\0\0\0\0")
    travel.unpack(tmp_path / "gpu", tmp_path / "out")
    assert "already_unpacked" not in capsys.readouterr().out
