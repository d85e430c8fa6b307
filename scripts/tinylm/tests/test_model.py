import torch

from scripts.tinylm.model import TinyLM
from .conftest import tiny_model_config


def test_cached_decoding_equals_full_forward(tiny_model):
    ids = torch.randint(0, 97, (2, 12))
    full, _, _ = tiny_model(ids)
    logits, _, past = tiny_model(ids[:, :5])
    steps = [logits]
    for t in range(5, 12):
        logits, _, past = tiny_model(ids[:, t:t + 1], past=past)
        steps.append(logits)
    assert (torch.cat(steps, 1) - full).abs().max() <= 1e-5


def test_left_padded_batch_matches_single_sequences(tiny_model):
    a, b = torch.randint(0, 97, (1, 7)), torch.randint(0, 97, (1, 4))
    pad = 3
    ids = torch.cat([a, torch.cat([torch.zeros(1, pad, dtype=torch.long), b], 1)])
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, :pad] = 0
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    logits, _, past = tiny_model(ids, position_ids=pos, attention_mask=mask)
    assert (logits[0] - tiny_model(a)[0][0]).abs().max() <= 1e-5
    assert (logits[1, pad:] - tiny_model(b)[0][0]).abs().max() <= 1e-5
    # one decode step for both rows, through the padded cache
    nxt = torch.randint(0, 97, (2, 1))
    step, _, _ = tiny_model(nxt, position_ids=pos[:, -1:] + 1, attention_mask=torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1), past=past)
    assert (step[1, 0] - tiny_model(torch.cat([b, nxt[1:]], 1))[0][0, -1]).abs().max() <= 1e-5


def test_grouped_query_attention_shapes_and_tied_weights():
    model = TinyLM(tiny_model_config(vocab_size=50, n_heads=4, n_kv_heads=1))
    attn = model.layers[0].self_attn
    assert attn.q_proj.weight.shape == (32, 32)
    assert attn.k_proj.weight.shape == (8, 32) and attn.v_proj.weight.shape == (8, 32)
    _, _, past = model(torch.randint(0, 50, (3, 5)))
    assert past[0][0].shape == (3, 1, 5, 8)
    assert model.lm_head.weight.data_ptr() == model.embed_tokens.weight.data_ptr()
    assert model.num_params() == sum(p.numel() for p in model.parameters())
