import math
from types import SimpleNamespace

import numpy as np
import torch

from scripts.tinylm.data import TokenSplit
from scripts.tinylm.evaluate import bits_per_byte, evaluate_task, score_options
from .conftest import write_shards


class SuccessorModel(torch.nn.Module):
    """Hand-made scorer: after token t it puts probability 0.9 on t + 1 and spreads 0.1 over the rest."""

    def __init__(self, vocab=10):
        super().__init__()
        self.vocab = vocab
        self.config = SimpleNamespace(max_seq_len=64)

    def forward(self, x):
        logp = torch.full((*x.shape, self.vocab), math.log(0.1 / (self.vocab - 1)))
        logp.scatter_(-1, ((x + 1) % self.vocab)[..., None], math.log(0.9))
        return logp, None, None


def score_option(model, context, continuation):
    """The unbatched reference: one option, one forward pass."""
    ids = (context + continuation)[-(model.config.max_seq_len + 1):]
    n = len(continuation)
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]]))[0][0, -n:].float()
    target = torch.tensor(ids[-n:])
    logprobs = torch.log_softmax(logits, dim=-1)
    return float(logprobs.gather(1, target[:, None]).sum()), bool((logits.argmax(-1) == target).all())


def test_score_option_sums_continuation_logprobs():
    m = SuccessorModel()
    ll, greedy = score_options(m, [{"context": [1, 2], "continuation": [3, 4]}])[0]
    assert abs(ll - 2 * math.log(0.9)) < 1e-5 and greedy
    ll, greedy = score_options(m, [{"context": [1, 2], "continuation": [5]}])[0]
    assert abs(ll - math.log(0.1 / 9)) < 1e-5 and not greedy


def test_multiple_choice_acc_and_length_normalised_acc():
    m = SuccessorModel()
    examples = [
        # the right answer follows the pattern: both metrics pick it
        {"options": [{"context": [1], "continuation": [2, 3], "bytes": 2},
                     {"context": [1], "continuation": [7], "bytes": 1}], "gold": 0},
        # raw likelihood prefers the 1-token answer (wrong); per byte the 4-byte gold answer wins
        {"options": [{"context": [1], "continuation": [5, 5, 5], "bytes": 4},
                     {"context": [1], "continuation": [5], "bytes": 1}], "gold": 0},
        # both metrics prefer the on-pattern option 0, but the gold is 1: both wrong
        {"options": [{"context": [1], "continuation": [2], "bytes": 1},
                     {"context": [1], "continuation": [2, 3, 9], "bytes": 3}], "gold": 1},
    ]
    r = evaluate_task(m, examples)
    assert r["n"] == 3
    assert abs(r["acc"] - 1 / 3) < 1e-9
    assert abs(r["acc_norm"] - 2 / 3) < 1e-9


def test_lambada_needs_an_exact_greedy_reproduction():
    m = SuccessorModel()
    examples = [{"options": [{"context": [1, 2], "continuation": [3, 4], "bytes": 2}], "gold": 0},
                {"options": [{"context": [1, 2], "continuation": [3, 5], "bytes": 2}], "gold": 0}]
    assert evaluate_task(m, examples)["acc"] == 0.5


def test_bits_per_byte_counts_bytes_of_targets(tmp_path):
    tokens = np.arange(65) % 10  # successor pattern: every prediction has p = 0.9
    split = TokenSplit(write_shards(tmp_path, {"val": tokens, "train": tokens}, 10, 9), "val")
    byte_lengths = torch.full((10,), 2)
    r = bits_per_byte(SuccessorModel(), split, byte_lengths, seq_len=16)
    assert r["tokens"] == 64
    assert abs(r["val_loss"] + math.log(0.9)) < 1e-5
    assert abs(r["bits_per_byte"] - (-math.log2(0.9) / 2)) < 1e-5


def test_batched_scoring_equals_one_option_at_a_time(tiny_model):
    g = torch.Generator().manual_seed(3)

    def ids(n):
        return torch.randint(0, 97, (n,), generator=g).tolist()

    options = [{"context": ids(c), "continuation": ids(n)} for c, n in [(5, 1), (1, 3), (17, 2), (9, 9), (2, 1), (30, 4)]]
    batched = score_options(tiny_model, options, batch_size=4)  # rows of different lengths share a batch
    for o, (ll, greedy) in zip(options, batched):
        ref_ll, ref_greedy = score_option(tiny_model, o["context"], o["continuation"])
        assert abs(ll - ref_ll) < 1e-4 and greedy == ref_greedy
