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
