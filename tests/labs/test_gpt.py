"""Invariants of the from-scratch GPT: causality, the fused kernel equals the naive reference, tied weights,
per-token losses average to the loss, generation appends exactly n tokens, configs that explain themselves."""
from __future__ import annotations

import math

import pytest
import torch

from labs.mixtures.gpt import GPT, GPTConfig, causal_attention, flops_per_token

CFG = GPTConfig(vocab_size=256, block_size=16, n_layer=2, n_head=4, n_embd=32)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_naive_attention_matches_the_fused_kernel():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 10, 8) for _ in range(3))  # [B, H, T, D]
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(causal_attention(q, k, v), fused, atol=1e-5)
    torch.manual_seed(1)
    a = GPT(CFG).eval()
    b = GPT(GPTConfig(**{**CFG.__dict__, "sdpa": False})).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randint(0, 256, (3, 16))
    assert torch.allclose(a(x)[0], b(x)[0], atol=1e-4)


def test_the_future_does_not_leak_into_the_past():
    torch.manual_seed(0)
    model = GPT(CFG).eval()
    x = torch.randint(0, 256, (1, 12))
    y = x.clone()
    y[0, 8:] = (y[0, 8:] + 1) % 256  # change only positions 8..11
    with torch.no_grad():
        lx, ly = model(x)[0], model(y)[0]
    assert torch.allclose(lx[0, :8], ly[0, :8], atol=1e-5)
    assert not torch.allclose(lx[0, 8:], ly[0, 8:])


def test_tied_embeddings_and_initial_loss_near_chance():
    torch.manual_seed(0)
    model = GPT(CFG)
    assert model.lm_head.weight is model.wte.weight
    x, y = torch.randint(0, 256, (4, 16)), torch.randint(0, 256, (4, 16))
    _, loss = model(x, y)
    assert abs(loss.item() - math.log(256)) < 0.2  # a fresh model is ~uniform over 256 bytes


def test_token_losses_average_to_the_loss():
    torch.manual_seed(0)
    model = GPT(CFG).eval()
    x, y = torch.randint(0, 256, (2, 16)), torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        _, loss = model(x, y)
        per = model.token_losses(x, y)
    assert per.shape == (2, 16)
    assert per.mean().item() == pytest.approx(loss.item(), rel=1e-5)


def test_a_few_steps_memorise_a_repeated_string():
    torch.manual_seed(0)
    model = GPT(CFG)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ids = torch.tensor([list(b"the cat sat on the mat.")])[:, :17]
    x, y = ids[:, :-1], ids[:, 1:]  # labels = inputs shifted by one
    first = None
    for _ in range(40):
        _, loss = model(x, y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 3


def test_generate_appends_exactly_n_tokens_past_the_context():
    torch.manual_seed(0)
    model = GPT(CFG)
    out = model.generate(torch.tensor([[104, 105]]), 20, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 22) and out[0, :2].tolist() == [104, 105]
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_config_errors_say_how_to_fix():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)


def test_flops_formula():
    cfg = GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=4, n_embd=96)
    n = 2 * 12 * 96**2 + 96 * 256
    assert flops_per_token(cfg) == 6 * n + 6 * 2 * 64 * 96
