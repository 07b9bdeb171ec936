"""Invariants of labs.attention: every fast form equals its recurrent reference; the algebra behind each variant."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labs.attention import cost, delta, linear, memory, softmax
from labs.attention.mixers import VARIANTS, MixerConfig, build_mixer, state_numbers

SHAPES = [(1, 1, 1, 4, 3), (2, 37, 3, 8, 5)]  # B, T, H, K, V (T not a multiple of any chunk size)


def _qkv(B, T, H, K, V, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, T, H, K, generator=g), torch.randn(B, T, H, K, generator=g),
            torch.randn(B, T, H, V, generator=g), g)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window", [None, 5])
def test_softmax_kv_cache_equals_parallel(shape, window):
    q, k, v, _ = _qkv(*shape)
    torch.testing.assert_close(softmax.softmax_attention_recurrent(q, k, v, window),
                               softmax.softmax_attention_parallel(q, k, v, window), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window", [1, 7, 100])
def test_sliding_window_blocked_equals_masked(shape, window):
    q, k, v, _ = _qkv(*shape)
    torch.testing.assert_close(softmax.sliding_window_chunked(q, k, v, window),
                               softmax.softmax_attention_parallel(q, k, v, window), atol=1e-5, rtol=1e-5)


def test_window_as_long_as_sequence_is_full_attention():
    q, k, v, _ = _qkv(2, 20, 2, 8, 8)
    torch.testing.assert_close(softmax.softmax_attention_parallel(q, k, v, 20), softmax.softmax_attention_parallel(q, k, v))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("chunk", [1, 8])
def test_linear_attention_forms_agree(shape, normalize, chunk):
    q, k, v, _ = _qkv(*shape)
    q, k = linear.elu_feature_map(q), linear.elu_feature_map(k)
    rec, _ = linear.linear_attention_recurrent(q, k, v, normalize)
    torch.testing.assert_close(linear.linear_attention_parallel(q, k, v, normalize), rec, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(linear.linear_attention_chunked(q, k, v, normalize, chunk), rec, atol=1e-4, rtol=1e-4)


def test_linear_attention_identity_map_is_masked_qk_v():
    """Without feature map or normaliser, linear attention is exactly tril(Q Kᵀ) V — attention minus the softmax."""
    q, k, v, _ = _qkv(2, 19, 2, 6, 4)
    expected = torch.einsum("bhts,bshv->bthv", torch.einsum("bthk,bshk->bhts", q, k).tril(), v)
    rec, S = linear.linear_attention_recurrent(q, k, v, normalize=False)
    torch.testing.assert_close(rec, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(S, torch.einsum("bthk,bthv->bhkv", k, v), atol=1e-4, rtol=1e-4)  # S_T = Σ k vᵀ


def test_linear_attention_state_does_not_grow():
    q, k, v, _ = _qkv(1, 50, 2, 8, 4)
    _, S = linear.linear_attention_recurrent(q, k, v)
    assert S.shape == (1, 2, 8, 4)


@pytest.mark.parametrize("d,p", [(3, 2), (4, 3), (5, 4), (2, 6)])
def test_sympow_embedding_inner_product_is_power(d, p):
    g = torch.Generator().manual_seed(d * 10 + p)
    x, y = torch.randn(7, d, generator=g, dtype=torch.float64), torch.randn(7, d, generator=g, dtype=torch.float64)
    phi_x, phi_y = linear.sympow_embedding(x, p), linear.sympow_embedding(y, p)
    assert phi_x.shape[-1] == math.comb(d + p - 1, p) == linear.power_state_dim(d, p)
    torch.testing.assert_close((phi_x * phi_y).sum(-1).double(), (x * y).sum(-1) ** p, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("d,p,expected", [(64, 1, 64), (64, 2, 2080), (64, 4, 766480), (16, 3, 816)])
def test_power_state_size_formula(d, p, expected):
    assert linear.power_state_dim(d, p) == expected == math.comb(d + p - 1, p)


def test_power_attention_p1_is_linear_attention_with_identity_map():
    q, k, v, _ = _qkv(2, 13, 2, 5, 3)
    assert torch.equal(linear.sympow_embedding(q, 1), q)
    o_power, _ = linear.power_attention_recurrent(q, k, v, p=1, normalize=False)
    o_linear, _ = linear.linear_attention_recurrent(q, k, v, normalize=False)
    torch.testing.assert_close(o_power, o_linear)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("p", [2, 4])
def test_power_attention_forms_agree(shape, p):
    q, k, v, _ = _qkv(*shape)
    if p == 4:  # keep scores away from 0: with a denominator ~1e-5, φ's float32 round-off dominates the ratio
        q, k = q.abs() / 2, k.abs() / 2
    rec, S = linear.power_attention_recurrent(q, k, v, p)
    assert S.shape[2] == linear.power_state_dim(q.shape[-1], p)
    torch.testing.assert_close(linear.linear_attention_parallel(q, k, v, power=p), rec, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(linear.power_attention_chunked(q, k, v, p, chunk_size=8), rec, atol=1e-4, rtol=1e-3)


def test_power_attention_refuses_odd_p():
    q, k, v, _ = _qkv(1, 4, 1, 3, 2)
    with pytest.raises(ValueError, match="even"):
        linear.power_attention_recurrent(q, k, v, p=3)
    with pytest.raises(ValueError, match="even"):
        MixerConfig(name="power", power=3)


def _delta_inputs(shape, decay, seed=0, beta_max=1.0):
    B, T, H, K, V = shape
    q, k, v, g = _qkv(*shape, seed=seed)
    k = F.normalize(k, dim=-1)
    beta = beta_max * torch.rand(B, T, H, generator=g)
    log_a = {"none": None, "scalar": -torch.rand(B, T, H, generator=g),
             "channel": -2 * torch.rand(B, T, H, K, generator=g)}[decay]
    return q, k, v, beta, log_a


@pytest.mark.parametrize("shape", SHAPES + [(1, 64, 2, 16, 16)])
@pytest.mark.parametrize("decay", ["none", "scalar", "channel"])  # DeltaNet, Gated DeltaNet, KDA
@pytest.mark.parametrize("chunk", [1, 4, 16, 100])  # 100: longer than every sequence, so one chunk of T
@pytest.mark.parametrize("beta_max", [1.0, 2.0])  # β ∈ (0, 2): negative eigenvalues (Grazzi et al. 2025)
def test_delta_rule_chunked_equals_recurrent(shape, decay, chunk, beta_max):
    q, k, v, beta, g = _delta_inputs(shape, decay, beta_max=beta_max)
    S0 = torch.randn(shape[0], shape[2], shape[3], shape[4])
    o_rec, s_rec = delta.delta_rule_recurrent(q, k, v, beta, g, initial_state=S0)
    o_chk, s_chk = delta.delta_rule_chunked(q, k, v, beta, g, chunk_size=chunk, initial_state=S0)
    torch.testing.assert_close(o_chk, o_rec, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s_chk, s_rec, atol=1e-4, rtol=1e-4)


def test_delta_rule_matches_its_matrix_equation():
    """One step: S_t = (I − β k kᵀ) Diag(α) S_{t−1} + β k vᵀ, written with explicit matrices."""
    K, V = 5, 3
    g = torch.Generator().manual_seed(3)
    S0 = torch.randn(1, 1, K, V, generator=g)
    k = F.normalize(torch.randn(1, 1, 1, K, generator=g), dim=-1)
    v, q = torch.randn(1, 1, 1, V, generator=g), torch.randn(1, 1, 1, K, generator=g)
    beta, log_a = torch.tensor([[[0.7]]]), -torch.rand(1, 1, 1, K, generator=g)
    _, S1 = delta.delta_rule_recurrent(q, k, v, beta, log_a, initial_state=S0)
    kk = k[0, 0, 0]
    expected = (torch.eye(K) - 0.7 * torch.outer(kk, kk)) @ torch.diag(log_a[0, 0, 0].exp()) @ S0[0, 0] \
        + 0.7 * torch.outer(kk, v[0, 0, 0])
    torch.testing.assert_close(S1[0, 0], expected, atol=1e-5, rtol=1e-5)


def test_kda_with_equal_channels_is_gated_deltanet():
    q, k, v, beta, g = _delta_inputs((2, 21, 2, 8, 4), "scalar")
    o_scalar, _ = delta.delta_rule_chunked(q, k, v, beta, g, chunk_size=8)
    o_channel, _ = delta.delta_rule_chunked(q, k, v, beta, g[..., None].expand(-1, -1, -1, 8), chunk_size=8)
    torch.testing.assert_close(o_scalar, o_channel, atol=1e-5, rtol=1e-5)


def test_delta_rule_beta_one_overwrites_a_key():
    """With β = 1 and a unit key written twice, the state returns the second value exactly (no pile-up)."""
    K = 4
    k = F.normalize(torch.randn(1, 1, 1, K), dim=-1).expand(1, 2, 1, K)
    v = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]])
    _, S = delta.delta_rule_recurrent(k, k, v, torch.ones(1, 2, 1))
    torch.testing.assert_close(torch.einsum("k,kv->v", k[0, 0, 0], S[0, 0]), torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)
    _, S_lin = linear.linear_attention_recurrent(k, k, v, normalize=False)
    torch.testing.assert_close(torch.einsum("k,kv->v", k[0, 0, 0], S_lin[0, 0]), torch.tensor([1.0, 2.0]), atol=1e-6, rtol=0)


def test_negative_eigenvalue_deltanet_flips_the_state_and_tracks_parity():
    """β = 2 and one fixed unit key for bit 1: I − 2kkᵀ reflects S along k, so kᵀS alternates 0, 2v, 0, 2v, …
    (Grazzi et al. 2025). With β ≤ 1 the eigenvalue 1 − β ≥ 0 never flips: kᵀS only creeps toward v."""
    K = 4
    k = F.normalize(torch.randn(K), dim=0)
    bits = [1, 1, 0, 1, 0, 0, 1]
    ones = torch.tensor(bits, dtype=torch.float32).view(1, -1, 1)
    keys = k.expand(1, len(bits), 1, K)
    v = torch.ones(1, len(bits), 1, 1)
    out, _ = delta.delta_rule_recurrent(keys, keys, v, 2.0 * ones)                 # β = 2 on bit 1, 0 on bit 0
    parity = torch.tensor(bits).cumsum(0) % 2
    torch.testing.assert_close(out[0, :, 0, 0], 2.0 * parity.float(), atol=1e-5, rtol=0)
    out, _ = delta.delta_rule_chunked(keys, keys, v, 2.0 * ones, chunk_size=4)
    torch.testing.assert_close(out[0, :, 0, 0], 2.0 * parity.float(), atol=1e-5, rtol=0)
    out_pos, _ = delta.delta_rule_recurrent(keys, keys, v, 1.0 * ones)             # β = 1: stuck at v after bit 1
    assert (out_pos[0, 1:, 0, 0] - 1.0).abs().max() < 1e-5


def test_negative_eigenvalue_mixer_has_beta_in_0_2_and_eigenvalues_in_minus1_1():
    torch.manual_seed(0)
    mixer = build_mixer(MixerConfig(name="deltanet_neg", d_model=16, n_heads=2))
    nn.init.normal_(mixer.beta.weight, std=0.7)  # spread σ toward both ends
    beta, g = mixer.gates(torch.randn(4, 50, 16), 2, 8)
    assert g is None and 0 < beta.min() and beta.max() < 2 and beta.max() > 1.5 and beta.min() < 0.5
    k = F.normalize(torch.randn(8), dim=0)
    for b in (beta.min(), beta.max()):
        eig = torch.linalg.eigvalsh(torch.eye(8) - b * torch.outer(k, k))
        assert -1 < eig.min() and eig.max() <= 1 + 1e-6
        torch.testing.assert_close(eig.min(), 1 - b, atol=1e-5, rtol=0)  # 1 − β along k, 1 elsewhere
    plain = build_mixer(MixerConfig(name="deltanet", d_model=16, n_heads=2))
    plain.load_state_dict(mixer.state_dict())
    torch.testing.assert_close(plain.gates(torch.ones(1, 3, 16), 2, 8)[0] * 2,
                               mixer.gates(torch.ones(1, 3, 16), 2, 8)[0])  # the same layer, β scaled by 2
    assert state_numbers(mixer.config, 100) == 2 * 8 * 8


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_mixer_chunked_equals_recurrent(name):
    torch.manual_seed(0)
    mixer = build_mixer(MixerConfig(name=name, d_model=32, n_heads=2, window=5, chunk_size=8))
    x = torch.randn(2, 19, 32)
    torch.testing.assert_close(mixer(x), mixer(x, mode="recurrent"), atol=1e-4, rtol=1e-4)
    assert mixer(x).shape == x.shape


def test_mixer_config_rejects_bad_heads():
    with pytest.raises(ValueError, match="divide evenly"):
        MixerConfig(d_model=30, n_heads=4)


def test_state_numbers():
    c = MixerConfig(name="softmax", d_model=64, n_heads=2)
    assert state_numbers(c, 100) == 2 * 100 * 64
    assert state_numbers(MixerConfig(name="sliding_window", d_model=64, window=16), 100) == 2 * 16 * 64
    assert state_numbers(MixerConfig(name="kda", d_model=64, n_heads=2), 100) == 2 * 32 * 32
    assert state_numbers(MixerConfig(name="kda", d_model=64, n_heads=2), 10**6) == 2 * 32 * 32  # constant
    assert state_numbers(MixerConfig(name="power", d_model=64, n_heads=2, power=2), 5) == 2 * 528 * 33


# --- memory calculator --------------------------------------------------------------------------------------------

def test_three_to_one_hybrid_gives_75_percent():
    assert memory.ratio_reduction(3, 1) == 0.75
    full = memory.ArchConfig("f", "f", (memory.mla_layer(24),), "")
    r = memory.reduction(memory.CONFIGS["ideal-3to1"], full, 10**7)
    assert 0.74 < r < 0.75  # approaches 75% from below as the fixed KDA states become negligible
    assert memory.reduction(memory.CONFIGS["ideal-3to1"], full, 1000) < r


def test_kimi_linear_at_one_million_tokens():
    r = memory.reduction(memory.CONFIGS["kimi-linear"], memory.CONFIGS["kimi-linear-mla"], 1_000_000)
    assert 1 - 7 / 27 - 0.01 < r < 1 - 7 / 27  # 7 of 27 layers keep a cache
    assert memory.CONFIGS["kimi-linear"].n_layers == memory.CONFIGS["kimi-linear-mla"].n_layers == 27


def test_llama3_kv_cache_size():
    b = memory.cache_bytes(memory.CONFIGS["llama3-8b"], 8192)
    assert b["total"] == 2 * 32 * 8 * 128 * 8192 * 2  # 1 GiB at 8k in bf16
    assert b["total"] == 2**30


# --- cost ------------------------------------------------------------------------------------------------------------

def test_fit_slope_and_crossover_on_synthetic_rows():
    rows = [{"variant": "softmax", "T": t, "prefill_ms": 1e-6 * t**2} for t in (256, 512, 1024, 2048)]
    rows += [{"variant": "linear", "T": t, "prefill_ms": 1e-3 * t} for t in (256, 512, 1024, 2048)]
    assert cost.fit_slope(rows, "softmax") == pytest.approx(2.0)
    assert cost.fit_slope(rows, "linear") == pytest.approx(1.0)
    assert cost.crossover(rows, "linear") == pytest.approx(1000.0, rel=1e-6)  # 1e-6 T² = 1e-3 T at T = 1000


def test_cost_refuses_huge_lengths_with_estimate():
    with pytest.raises(ValueError, match="GiB"):
        cost.CostConfig(max_len=65536)


def test_measure_tiny_run_skips_over_memory_cap():
    config = cost.CostConfig(variants=("softmax", "kda"), min_len=32, max_len=64, heads=1, head_dim=8,
                             chunk_size=16, repeats=1, memory_cap_gib=0.0001)
    rows = cost.measure(config)
    assert {r["variant"] for r in rows} == {"softmax", "kda"}
    assert all(r["prefill_ms"] is None and "cap" in r["skipped"] for r in rows if r["estimate_MiB"] > 0.1)
    config = cost.CostConfig(variants=("softmax", "gated_deltanet"), min_len=32, max_len=64, heads=1, head_dim=8,
                             chunk_size=16, repeats=1)
    rows = cost.measure(config)
    assert all(r["prefill_ms"] > 0 and r["decode_ms"] > 0 for r in rows)
