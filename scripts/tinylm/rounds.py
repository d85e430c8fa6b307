"""Multiple-round training (PanGu-π Pro formula 4): after a round, score the batches it trained on
with the frozen model and draw a fraction of them, with probability ∝ exp(loss), for the next round."""
from __future__ import annotations

import torch


@torch.no_grad()
def score_batches(model, batch_fn, batch_ids, device, autocast) -> torch.Tensor:
    """Mean loss of each listed batch under the (frozen) model."""
    model.eval()
    losses = []
    for b in batch_ids:
        x, y = batch_fn(b)
        with autocast():
            _, loss, _ = model(x.to(device), y.to(device))
        losses.append(float(loss))
    model.train()
    return torch.tensor(losses)


def sample_batches(batch_ids: list[int], losses: torch.Tensor | None, fraction: float, mode: str, seed: int) -> list[int]:
    """Draw round(fraction × n) batches without replacement: ∝ exp(loss) ("loss") or uniformly ("uniform"),
    returned in a shuffled order; "fresh" takes as many batches the run has not seen yet (the same extra
    tokens without any reuse)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"round_fraction must be in (0, 1], got {fraction}")
    k = max(1, round(fraction * len(batch_ids)))
    if mode == "fresh":
        first = max(batch_ids) + 1
        return list(range(first, first + k))
    if mode == "loss":
        weights = torch.softmax(losses.double(), dim=0)  # ∝ exp(loss), computed stably
    elif mode == "uniform":
        weights = torch.ones(len(batch_ids), dtype=torch.double)
    else:
        raise ValueError(f"round_sampling must be 'loss', 'uniform' or 'fresh', got {mode!r}")
    g = torch.Generator().manual_seed(seed)
    picked = torch.multinomial(weights, k, replacement=False, generator=g)
    # Drawn without replacement, the heaviest batches tend to come out first: trained in draw order,
    # the round would be a hardest-first curriculum that the uniform arm does not get. Shuffle.
    picked = picked[torch.randperm(k, generator=g)]
    return [batch_ids[int(i)] for i in picked]
