"""The delta rule family: DeltaNet, Gated DeltaNet (scalar decay) and KDA (per-channel decay), one recurrence.

    S_t = (I − β_t k_t k_tᵀ) Diag(α_t) S_{t−1} + β_t k_t v_tᵀ,      o_t = S_tᵀ q_t

* DeltaNet (Schlag et al. 2021; Yang et al. 2024):       α_t = 1
  (β_t ∈ (0, 2) instead of (0, 1) gives I − β_t k_t k_tᵀ the eigenvalue 1 − β_t < 0: Grazzi et al. 2025; both
  forms below are exact for any β, the chunked one solves a unit-triangular system whatever β is)
* Gated DeltaNet (Yang, Kautz & Hatamizadeh 2025, eq. 10): α_t = a scalar in (0, 1) per head
* KDA, Kimi Delta Attention (Kimi Linear, 2025, eq. 1):  α_t ∈ (0, 1)^K, one decay per key channel

Read as online learning: S is a linear map keys -> values; each token takes one gradient step of size β_t on
½‖Sᵀk_t − v_t‖² after decaying S, so a key written twice is overwritten instead of piling up.
Decays are passed in log space, g = log α ≤ 0, so products of many α stay accurate.

Shapes: q, k [B, T, H, K] (k should be L2-normalised, as the layers do), v [B, T, H, V], beta [B, T, H],
g None | [B, T, H] (scalar) | [B, T, H, K] (per channel), state S [B, H, K, V].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def delta_rule_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                         g: torch.Tensor | None = None, initial_state: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: one token at a time.

    | arg           | shape                                         |
    |---------------|-----------------------------------------------|
    | q, k          | [B, T, H, K]                                  |
    | v             | [B, T, H, V]                                  |
    | beta          | [B, T, H]      write strength in (0, 1) or (0, 2) |
    | g             | None, [B, T, H] or [B, T, H, K]   log decay ≤ 0 |
    | initial_state | [B, H, K, V] or None                          |
    | return        | o [B, T, H, V], final_state [B, H, K, V]       |
    """
    B, T, H, K = q.shape
    dtype = v.dtype
    q, k, v, beta = q.float(), k.float(), v.float(), beta.float()
    g = _per_channel(g, K)
    S = torch.zeros(B, H, K, v.shape[-1], device=q.device) if initial_state is None else initial_state.float()
    out = torch.empty(B, T, H, v.shape[-1], device=q.device)
    for t in range(T):
        if g is not None:
            S = S * g[:, t].exp()[..., None]                                        # Diag(α_t) S_{t−1}
        retrieved = torch.einsum("bhk,bhkv->bhv", k[:, t], S)                      # what S says k_t maps to
        u = beta[:, t, :, None] * (v[:, t] - retrieved)                             # the delta: β (v − Sᵀk)
        S = S + torch.einsum("bhk,bhv->bhkv", k[:, t], u)
        out[:, t] = torch.einsum("bhk,bhkv->bhv", q[:, t], S)
    return out.to(dtype), S


def delta_rule_chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                       g: torch.Tensor | None = None, chunk_size: int = 32,
                       initial_state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunkwise-parallel form (the WY / UT-transform trick of Yang et al. 2024, with decays as in KDA).

    Within a chunk, with G_i = Σ_{j≤i} g_j (cumulative log decay per channel) and S0 the entering state,
    S_i = Diag(e^{G_i}) S0 + Σ_{j≤i} Diag(e^{G_i−G_j}) k_j u_jᵀ. The pseudo-values u solve a unit lower-triangular
    system (I + Diag(β) A) U = Diag(β) (V − (e^G ⊙ K) S0), A_ij = Σ_c k_ic k_jc e^{G_ic−G_jc} (i > j),
    which splits into two solves independent of S0 — all chunks at once — and one small matmul per chunk.
    Same arguments and return as `delta_rule_recurrent`; T need not be a multiple of chunk_size.
    """
    B, T, H, K = q.shape
    dtype = v.dtype
    Vd = v.shape[-1]
    q, k, v, beta = q.float(), k.float(), v.float(), beta.float()
    scalar = g is None or g.dim() == 3
    g = torch.zeros(B, T, H, device=q.device) if g is None else g.float()
    C = min(int(chunk_size), T)  # a chunk longer than the sequence would only add padding
    n = -(-T // C)
    pad = n * C - T
    if pad:  # padded steps have k = v = β = g = 0: they leave the state alone
        q, k, v = (F.pad(x, (0, 0, 0, 0, 0, pad)) for x in (q, k, v))
        beta = F.pad(beta, (0, 0, 0, pad))
        g = F.pad(g, (0, 0, 0, pad)) if scalar else F.pad(g, (0, 0, 0, 0, 0, pad))
    to_chunks = lambda x: x.reshape(B, n, C, H, *x.shape[3:]).transpose(2, 3)            # [B, N, H, C, ...]
    q, k, v, beta, g = map(to_chunks, (q, k, v, beta, g))
    G = g.cumsum(3)                                                                     # [B, N, H, C(, K)]
    lower = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()                  # j ≤ i
    if scalar:
        decay = (G[..., :, None] - G[..., None, :]).masked_fill(~lower, float("-inf")).exp()  # [B, N, H, C, C]
        A_kk = torch.einsum("bnhik,bnhjk->bnhij", k, k) * decay
        A_qk = torch.einsum("bnhik,bnhjk->bnhij", q, k) * decay
        Gk = G[..., None]                                                               # broadcast over K
    else:
        diff = (G[..., :, None, :] - G[..., None, :, :])                                # [B, N, H, C, C, K]
        decay = diff.masked_fill(~lower[..., None], float("-inf")).exp()
        A_kk = torch.einsum("bnhik,bnhjk,bnhijk->bnhij", k, k, decay)
        A_qk = torch.einsum("bnhik,bnhjk,bnhijk->bnhij", q, k, decay)
        Gk = G
    strict = torch.ones(C, C, dtype=torch.bool, device=q.device).tril(-1)
    L = torch.eye(C, device=q.device) + beta[..., None] * A_kk.masked_fill(~strict, 0.0)   # I + Diag(β) A
    W_v = torch.linalg.solve_triangular(L, beta[..., None] * v, upper=False, unitriangular=True)  # [.., C, V]
    W_k = torch.linalg.solve_triangular(L, beta[..., None] * (k * Gk.exp()), upper=False, unitriangular=True)
    q_decayed = q * Gk.exp()                                                           # e^{G_i} ⊙ q_i
    G_last = Gk[..., -1:, :] if not scalar else G[..., -1:, None]                      # [B, N, H, 1, K or 1]
    k_to_end = k * (G_last - Gk).exp()                                                 # e^{G_C − G_j} ⊙ k_j
    S = torch.zeros(B, H, K, Vd, device=q.device) if initial_state is None else initial_state.float()
    out = torch.empty(B, n, H, C, Vd, device=q.device)
    for i in range(n):
        U = W_v[:, i] - W_k[:, i] @ S                                                   # [B, H, C, V]
        out[:, i] = q_decayed[:, i] @ S + A_qk[:, i] @ U
        S = G_last[:, i, :, 0, :].exp()[..., None] * S + torch.einsum("bhck,bhcv->bhkv", k_to_end[:, i], U)
    return out.transpose(2, 3).reshape(B, n * C, H, Vd)[:, :T].to(dtype), S


def _per_channel(g: torch.Tensor | None, K: int) -> torch.Tensor | None:
    if g is None:
        return None
    g = g.float()
    return g[..., None].expand(*g.shape, K) if g.dim() == 3 else g
