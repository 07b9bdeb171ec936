"""Causal softmax attention and sliding-window attention: the parallel form and the KV-cache (recurrent) form.

Shapes (legend in `labs`): B batch, T time, H heads, K key/query dim, V value dim, W window, N blocks.

    q: [B, T, H, K]   k: [B, T, H, K]   v: [B, T, H, V]   ->   o: [B, T, H, V]

Everything is computed in float32 and cast back to v's dtype, like fla's naive references.
"""
from __future__ import annotations

import math

import torch


def _mask(T: int, window: int | None, device) -> torch.Tensor:
    """[T, T] boolean, True where query t may see key s: s <= t (causal) and t - s < window."""
    t = torch.arange(T, device=device)
    allowed = t[None, :] <= t[:, None]
    if window is not None:
        allowed &= (t[:, None] - t[None, :]) < window
    return allowed


def softmax_attention_parallel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None = None,
                               scale: float | None = None) -> torch.Tensor:
    """o_t = Σ_{s≤t, t−s<W} softmax_s(q_t·k_s / √K) v_s — the full [T, T] score matrix (Vaswani et al. 2017, eq. 1).

    | arg    | shape        |
    |--------|--------------|
    | q, k   | [B, T, H, K] |
    | v      | [B, T, H, V] |
    | window | None = full causal attention, W = sliding window of W keys (the query's own included) |
    | return | [B, T, H, V] |

    Cost: O(T²) time and memory — the quadratic term the lecture is about.
    """
    B, T, H, K = q.shape
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    scale = 1.0 / math.sqrt(K) if scale is None else scale
    scores = torch.einsum("bthk,bshk->bhts", q, k) * scale                        # [B, H, T, T]
    scores = scores.masked_fill(~_mask(T, window, q.device), float("-inf"))
    return torch.einsum("bhts,bshv->bthv", scores.softmax(-1), v).to(dtype)


def softmax_attention_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None = None,
                                scale: float | None = None) -> torch.Tensor:
    """Token-by-token decoding with a KV cache: the 'state' is every past key and value (the last W for a window).

    Same shapes as `softmax_attention_parallel`. The cache grows by one key and one value per step, so the
    state after T tokens holds 2·T·H·K numbers (2·min(T, W)·H·K with a window) — the KV cache.
    """
    B, T, H, K = q.shape
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    scale = 1.0 / math.sqrt(K) if scale is None else scale
    out = torch.empty(B, T, H, v.shape[-1], dtype=torch.float32, device=q.device)
    for t in range(T):
        start = 0 if window is None else max(0, t - window + 1)
        k_cache, v_cache = k[:, start:t + 1], v[:, start:t + 1]                    # [B, S, H, K], [B, S, H, V]
        w = (torch.einsum("bhk,bshk->bhs", q[:, t], k_cache) * scale).softmax(-1)  # [B, H, S]
        out[:, t] = torch.einsum("bhs,bshv->bhv", w, v_cache)
    return out.to(dtype)


def sliding_window_chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int,
                           scale: float | None = None) -> torch.Tensor:
    """Sliding-window attention in blocks of W queries, each looking at its own block and the one before:
    O(T·W) time and memory instead of O(T²). Same shapes and result as `softmax_attention_parallel(window=W)`.
    """
    B, T, H, K = q.shape
    dtype = v.dtype
    W = int(window)
    q, k, v = q.float(), k.float(), v.float()
    scale = 1.0 / math.sqrt(K) if scale is None else scale
    n = -(-T // W)
    pad = n * W - T
    if pad:
        q, k, v = (torch.nn.functional.pad(x, (0, 0, 0, 0, 0, pad)) for x in (q, k, v))
    qc = q.view(B, n, W, H, K)                                                        # [B, N, W, H, K]
    kc, vc = k.view(B, n, W, H, K), v.view(B, n, W, H, -1)
    prev = lambda x: torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)   # the block before
    k2, v2 = torch.cat([prev(kc), kc], dim=2), torch.cat([prev(vc), vc], dim=2)    # [B, N, 2W, H, *]
    scores = torch.einsum("bnthk,bnshk->bnhts", qc, k2) * scale                     # [B, N, H, W, 2W]
    t = torch.arange(W, device=q.device)[:, None] + W                                # query position in the 2W frame
    s = torch.arange(2 * W, device=q.device)[None, :]
    allowed = (s <= t) & (t - s < W)
    first = torch.zeros(n, 1, 2 * W, dtype=torch.bool, device=q.device)
    first[0, 0, :W] = True                                                           # block 0 has no block before
    allowed = allowed[None] & ~first                                                 # [N, W, 2W]
    scores = scores.masked_fill(~allowed[None, :, None], float("-inf"))
    out = torch.einsum("bnhts,bnshv->bnthv", scores.softmax(-1), v2)
    return out.reshape(B, n * W, H, -1)[:, :T].to(dtype)
