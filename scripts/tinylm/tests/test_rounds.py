import pytest
import torch

from scripts.tinylm.rounds import sample_batches


def test_high_loss_batches_are_drawn_more_often():
    ids = list(range(100))
    losses = torch.tensor([2.0] * 50 + [4.0] * 50)  # second half: e² ≈ 7.4× more likely per draw
    high = 0
    for seed in range(200):
        picked = sample_batches(ids, losses, 0.2, "loss", seed)
        high += sum(1 for b in picked if b >= 50)
    share = high / (200 * 20)
    assert share > 0.8  # uniform sampling would give 0.5


def test_uniform_mode_ignores_loss():
    ids = list(range(100))
    losses = torch.tensor([2.0] * 50 + [4.0] * 50)
    high = sum(sum(1 for b in sample_batches(ids, losses, 0.2, "uniform", s) if b >= 50) for s in range(200))
    assert abs(high / 4000 - 0.5) < 0.05


def test_fraction_is_respected_without_replacement():
    ids = list(range(37))
    picked = sample_batches(ids, torch.rand(37), 0.5, "loss", 1)
    assert len(picked) == round(0.5 * 37)
    assert len(set(picked)) == len(picked)
    assert sample_batches(ids, torch.rand(37), 0.5, "loss", 1) != [] and \
        sample_batches(ids, torch.zeros(37), 0.5, "loss", 3) == sample_batches(ids, torch.zeros(37), 0.5, "loss", 3)


def test_bad_fraction_is_an_error():
    with pytest.raises(ValueError, match="round_fraction"):
        sample_batches([1, 2], torch.zeros(2), 1.5, "loss", 0)


def test_the_loss_weighted_sample_comes_in_a_shuffled_order_not_hardest_first():
    """Round 2 trains the batches in the returned order: draw order would put the hardest first (a
    curriculum the uniform arm does not get)."""
    ids = list(range(400))
    losses = torch.linspace(0.0, 8.0, 400)  # steep: without the shuffle the first draws are nearly all high-loss
    early, late = 0.0, 0.0
    for seed in range(20):
        picked = sample_batches(ids, losses, 0.5, "loss", seed)
        early += sum(losses[b] for b in picked[:50]) / 50
        late += sum(losses[b] for b in picked[-50:]) / 50
    assert abs(early - late) / 20 < 0.3, (early / 20, late / 20)
