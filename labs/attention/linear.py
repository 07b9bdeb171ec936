"""Linear attention (Katharopoulos et al. 2020) and power attention (Buckman, Gelada & Zhang 2024, Manifest AI).

Linear attention replaces exp(q·k) by a feature-map inner product φ(q)·φ(k), so the sum over the past folds
into a fixed-size state (Katharopoulos et al. 2020, eqs. 4–6 and 16–20):

    S_t = S_{t−1} + φ(k_t) v_tᵀ          [K, V]
    z_t = z_{t−1} + φ(k_t)               [K]       (only with normalize=True)
    o_t = S_tᵀ φ(q_t) / (φ(q_t)·z_t)

Power attention uses the score (q·k)^p. The symmetric power embedding φ_p (one feature per multiset of p
indices) makes that score an inner product, φ_p(q)·φ_p(k) = (q·k)^p, so it is linear attention with a state of
C(K+p−1, p) × V numbers: the state size is a knob of its own, set by p, not by the parameter count.

Shapes: q, k [B, T, H, K] (features already applied), v [B, T, H, V], state S [B, H, K, V], z [B, H, K].
"""
from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from labs.core.errors import ConfigError


EPS = 1e-6


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = elu(x) + 1 > 0 (Katharopoulos et al. 2020, eq. 7): positive scores, so the normaliser never hits 0."""
    return F.elu(x) + 1


def linear_attention_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, normalize: bool = True,
                               initial_state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The RNN form: one rank-1 update of S per token.

    | arg           | shape        |
    |---------------|--------------|
    | q, k          | [B, T, H, K] |
    | v             | [B, T, H, V] |
    | initial_state | [B, H, K, V] or None |
    | return        | o [B, T, H, V], final_state [B, H, K, V] |
    """
    B, T, H, K = q.shape
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    S = torch.zeros(B, H, K, v.shape[-1], device=q.device) if initial_state is None else initial_state.float()
    z = torch.zeros(B, H, K, device=q.device)
    out = torch.empty(B, T, H, v.shape[-1], device=q.device)
    for t in range(T):
        S = S + torch.einsum("bhk,bhv->bhkv", k[:, t], v[:, t])
        z = z + k[:, t]
        o = torch.einsum("bhk,bhkv->bhv", q[:, t], S)
        if normalize:
            o = o / (torch.einsum("bhk,bhk->bh", q[:, t], z)[..., None] + EPS)
        out[:, t] = o
    return out.to(dtype), S


def linear_attention_parallel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, normalize: bool = True,
                              power: int = 1) -> torch.Tensor:
    """The attention form: o = (tril(Q Kᵀ)^p / rowsum) V — a masked [T, T] matrix, quadratic like softmax.

    power=p gives power attention's scores (q·k)^p directly, without ever building φ_p.
    Shapes as in `linear_attention_recurrent`; returns o [B, T, H, V].
    """
    B, T, H, K = q.shape
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    scores = torch.einsum("bthk,bshk->bhts", q, k) ** power                        # [B, H, T, T]
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=q.device).tril(), 0.0)
    out = torch.einsum("bhts,bshv->bthv", scores, v)
    if normalize:
        out = out / (scores.sum(-1).transpose(1, 2)[..., None] + EPS)
    return out.to(dtype)


def linear_attention_chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, normalize: bool = True,
                             chunk_size: int = 64, power: int = 1,
                             q_feat: torch.Tensor | None = None, k_feat: torch.Tensor | None = None) -> torch.Tensor:
    """Chunkwise form: inside a chunk of C tokens use the masked score matrix, across chunks carry the state.

    O(T·C·K) for the intra-chunk part plus O(T·K·V) for the states: linear in T.
    For power attention pass power=p and the embeddings q_feat = φ_p(q), k_feat = φ_p(k) [B, T, H, E]:
    intra-chunk scores use (q·k)^p, the carried state uses φ_p (Manifest AI's chunked power attention).
    """
    B, T, H, K = q.shape
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    qf = q if q_feat is None else q_feat.float()
    kf = k if k_feat is None else k_feat.float()
    C = min(int(chunk_size), T)  # a chunk longer than the sequence would only add padding
    n = -(-T // C)
    pad = n * C - T
    if pad:
        q, k, v, qf, kf = (F.pad(x, (0, 0, 0, 0, 0, pad)) for x in (q, k, v, qf, kf))
    E, Vd = kf.shape[-1], v.shape[-1]
    qc, kc, vc = q.view(B, n, C, H, K), k.view(B, n, C, H, K), v.view(B, n, C, H, Vd)
    qfc, kfc = qf.view(B, n, C, H, E), kf.view(B, n, C, H, E)
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    intra = (torch.einsum("bnthk,bnshk->bnhts", qc, kc) ** power).masked_fill(~causal, 0.0)   # [B, N, H, C, C]
    # State entering each chunk: prefix sum over chunks of Σ φ(k) vᵀ (exclusive).
    chunk_kv = torch.einsum("bnshe,bnshv->bnhev", kfc, vc)                               # [B, N, H, E, V]
    S_in = chunk_kv.cumsum(1) - chunk_kv
    out = torch.einsum("bnthe,bnhev->bnthv", qfc, S_in) + torch.einsum("bnhts,bnshv->bnthv", intra, vc)
    if normalize:
        chunk_k = kfc.sum(2)                                                               # [B, N, H, E]
        z_in = chunk_k.cumsum(1) - chunk_k
        denom = torch.einsum("bnthe,bnhe->bnth", qfc, z_in) + intra.sum(-1).transpose(2, 3)
        out = out / (denom[..., None] + EPS)
    return out.reshape(B, n * C, H, Vd)[:, :T].to(dtype)


# --- power attention -------------------------------------------------------------------------------------------

def power_state_dim(d: int, p: int) -> int:
    """Features of the symmetric power embedding: multisets of size p from d indices, C(d+p−1, p)."""
    return math.comb(d + p - 1, p)


@lru_cache(maxsize=32)
def _sympow_index(d: int, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    combos = list(itertools.combinations_with_replacement(range(d), p))
    index = torch.tensor(combos, dtype=torch.long).view(len(combos), p)                    # [E, p]
    # multinomial coefficient p! / Π m_i! for the multiplicities m_i of each multiset
    coef = [math.factorial(p) / math.prod(math.factorial(c.count(i)) for i in set(c)) for c in combos]
    return index, torch.tensor(coef).sqrt()


def sympow_embedding(x: torch.Tensor, p: int) -> torch.Tensor:
    """φ_p(x)_α = √(p!/α!) Π_i x_{α_i} over multisets α, so φ_p(q)·φ_p(k) = (q·k)^p (multinomial theorem).

    x: [..., d]  ->  [..., C(d+p−1, p)]. The full tensor power x^{⊗p} has d^p entries; the symmetric one keeps
    one copy of each distinct product, which is why the state is C(d+p−1, p) and not d^p.
    """
    d = x.shape[-1]
    index, coef = _sympow_index(d, int(p))
    index, coef = index.to(x.device), coef.to(device=x.device, dtype=torch.float32)
    return x.float()[..., index].prod(-1) * coef                                          # [..., E]


def power_attention_recurrent(q, k, v, p: int = 2, normalize: bool = True):
    """Power attention as an RNN over the state S ∈ R^{C(K+p−1,p) × V}. Returns (o, final_state)."""
    _check_power(p, normalize)
    return linear_attention_recurrent(sympow_embedding(q, p), sympow_embedding(k, p), v, normalize=normalize)


def power_attention_chunked(q, k, v, p: int = 2, normalize: bool = True, chunk_size: int = 64) -> torch.Tensor:
    """Power attention in the chunked form: (q·k)^p inside each chunk of C tokens, the state over φ_p
    across chunks. q, k [B, T, H, K], v [B, T, H, V] -> o [B, T, H, V]; equals `power_attention_recurrent`."""
    _check_power(p, normalize)
    return linear_attention_chunked(q, k, v, normalize=normalize, chunk_size=chunk_size, power=p,
                                    q_feat=sympow_embedding(q, p), k_feat=sympow_embedding(k, p))


def _check_power(p: int, normalize: bool) -> None:
    if p < 1:
        raise ConfigError(f"Power attention needs a degree p ≥ 1, got {p}.")
    if normalize and p % 2:
        raise ConfigError(f"Power attention with odd p={p} can give negative scores (q·k)^p, so the normaliser "
                         "can be 0 or negative. Use an even p (2, 4, …).")
