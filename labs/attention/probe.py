"""Look inside a trained mixer: the softmax attention map, and for recurrent variants the state over time.

    captured = capture(model, inputs)          # operands of every layer's mixer for one sequence
    attention_map(model, captured, layer=0)     # [H, T, T] softmax weights (softmax / sliding window)
    state_trace(model, captured, layer=0)       # per step: ‖S_t‖ and how well S_t still retrieves early keys

Retrieval of position j after n more tokens: cos(S_{j+n}ᵀ k_j, v_j) — 1 means the state still maps key j to its
value; a decaying gate or later overwrites pull it down (forgetting). Linear attention never forgets, but
its keys interfere; the delta rule overwrites; gates decay.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from labs.attention import delta, linear
from labs.attention.mixers import DeltaMixer, LinearMixer, PowerMixer, SoftmaxMixer
from labs.core.errors import ConfigError


@torch.no_grad()
def capture(model, inputs: torch.Tensor) -> list[tuple]:
    """Run the model on inputs [1, T]; return (q, k, v, x) of every layer's mixer (each [1, T, H, K])."""
    mixers = [block.mixer for block in model.blocks]
    for m in mixers:
        m.capture = True
    try:
        model(inputs)
        return [m.captured for m in mixers]
    finally:
        for m in mixers:
            m.capture, m.captured = False, None


def attention_map(model, captured: list[tuple], layer: int = 0) -> torch.Tensor:
    """Softmax weights [H, T, T] of one layer (rows: queries, columns: keys)."""
    mixer = model.blocks[layer].mixer
    if not isinstance(mixer, SoftmaxMixer):
        raise ConfigError("Attention maps exist for softmax and sliding-window mixers only.")
    q, k, _, _ = captured[layer]
    T, K = q.shape[1], q.shape[-1]
    scores = torch.einsum("bthk,bshk->bhts", q, k)[0] / math.sqrt(K)
    t = torch.arange(T)
    allowed = t[None, :] <= t[:, None]
    if mixer.config.name == "sliding_window":
        allowed &= (t[:, None] - t[None, :]) < mixer.config.window
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1)


@torch.no_grad()
def state_trace(model, captured: list[tuple], layer: int = 0, head: int = 0, sources: tuple[int, ...] = (0, 1, 2, 3)
                ) -> dict:
    """{'norm': [‖S_t‖_F for t], 'retrieval': {j: [cos(S_tᵀ k_j, v_j) for t ≥ j]}} for one head.

    Runs the variant's own recurrence one token at a time from the captured operands."""
    mixer = model.blocks[layer].mixer
    q, k, v, x = captured[layer]
    B, T, H, K = q.shape
    if isinstance(mixer, SoftmaxMixer):
        raise ConfigError("Softmax attention has no fixed-size state: its 'state' is the whole KV cache.")
    beta = g = None
    if isinstance(mixer, DeltaMixer):
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        beta, g = mixer.gates(x, H, K)
    elif isinstance(mixer, LinearMixer):
        k = linear.elu_feature_map(k)
    elif isinstance(mixer, PowerMixer):
        k = linear.sympow_embedding(k / K**0.5, mixer.config.power)
    S = torch.zeros(B, H, k.shape[-1], v.shape[-1])
    norms, states = [], []
    for t in range(T):
        sl = slice(t, t + 1)
        if beta is not None:
            _, S = delta.delta_rule_recurrent(k[:, sl], k[:, sl], v[:, sl], beta[:, sl],
                                              None if g is None else g[:, sl], initial_state=S)
        else:
            _, S = linear.linear_attention_recurrent(k[:, sl], k[:, sl], v[:, sl], normalize=False, initial_state=S)
        norms.append(S[0, head].norm().item())
        states.append(S[0, head].clone())
    retrieval = {}
    for j in sources:
        if j >= T:
            continue
        kj, vj = k[0, j, head], v[0, j, head]
        retrieval[j] = [F.cosine_similarity(states[t].T @ kj, vj, dim=0).item() for t in range(j, T)]
    return {"norm": norms, "retrieval": retrieval}
