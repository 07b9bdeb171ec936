"""One small interface for every sequence mixer, so variants swap by config (as in HazyResearch/zoology).

    mixer = build_mixer(MixerConfig(name="kda", d_model=64, n_heads=2))
    y = mixer(x)                        # x, y: [B, T, M]; mode="chunked" (default) or "recurrent"
    mixer.state_numbers(T)              # numbers of decoding state per sequence after T tokens (KV cache or S)

Every mixer projects x to per-head q, k, v (M = H·K), mixes along time with one of the operators in this
package, and projects back. A short causal depthwise convolution on the input (kernel 4, as in Mamba,
DeltaNet and KDA layers) is on by default for every variant, so the comparison is fair.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labs.attention import delta, linear, softmax
from labs.core.errors import ConfigError


VARIANTS = {
    "softmax": "Causal softmax attention",
    "sliding_window": "Sliding-window attention",
    "linear": "Linear attention (elu+1)",
    "deltanet": "DeltaNet",
    "deltanet_neg": "DeltaNet, β ∈ (0, 2) (negative eigenvalues)",
    "gated_deltanet": "Gated DeltaNet",
    "kda": "KDA (Kimi Delta Attention)",
    "power": "Power attention",
}


def check_mixers(names) -> None:
    """ValueError unless `names` picks at least one known mixer (the message lists the choices)."""
    if not names:
        raise ConfigError("Pick at least one mixer to train.")
    for m in names:
        if m not in VARIANTS:
            raise ConfigError(f"Unknown mixer '{m}'. Choose from: {', '.join(VARIANTS)}.")
LINEAR_FAMILY = ("linear", "deltanet", "deltanet_neg", "gated_deltanet", "kda", "power")


@dataclass(frozen=True)
class MixerConfig:
    """One sequence mixer: which operator (`name`, a key of VARIANTS), model width d_model (M) split into
    n_heads heads of head_dim (K) each; window, power and chunk_size apply to the variants that use them."""
    name: str = "softmax"
    d_model: int = 64
    n_heads: int = 2
    window: int = 16  # sliding_window only: keys each query sees (itself included)
    power: int = 2  # power only: the degree p (even)
    chunk_size: int = 32
    short_conv: bool = True

    def __post_init__(self):
        if self.name not in VARIANTS:
            raise ConfigError(f"Unknown mixer '{self.name}'. Choose one of: {', '.join(VARIANTS)}.")
        if self.n_heads < 1 or self.d_model % self.n_heads:
            raise ConfigError(f"The model width d={self.d_model} must divide evenly into {self.n_heads} heads "
                             f"(d / heads is each head's dimension). Try heads = 1, 2 or 4.")
        if self.window < 1:
            raise ConfigError("The sliding window must hold at least 1 token.")
        if self.name == "power" and (self.power < 2 or self.power % 2):
            raise ConfigError(f"Power attention needs an even degree p ≥ 2 (got {self.power}): odd p gives "
                             "negative scores (q·k)^p and a normaliser that can be 0.")
        if self.chunk_size < 1:
            raise ConfigError("chunk_size must be at least 1.")

    @property
    def head_dim(self) -> int:
        """Width K of each head: d_model / n_heads."""
        return self.d_model // self.n_heads


class ShortConv(nn.Module):
    """Causal depthwise convolution over time: y_t = Σ_{i<4} w_i ⊙ x_{t−i}."""

    def __init__(self, d: int, kernel: int = 4):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(d, d, kernel, groups=d, padding=kernel - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, M] -> [B, T, M], causal: position t sees inputs t−3..t only."""
        return self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)


class Mixer(nn.Module):
    """Base: input conv + q/k/v/out projections; subclasses implement `mix(q, k, v, x, mode)`."""

    def __init__(self, config: MixerConfig):
        super().__init__()
        self.config = config
        M = config.d_model
        self.conv = ShortConv(M) if config.short_conv else nn.Identity()
        self.qkv = nn.Linear(M, 3 * M, bias=False)
        self.out = nn.Linear(M, M, bias=False)
        self.capture, self.captured = False, None

    def forward(self, x: torch.Tensor, mode: str = "chunked") -> torch.Tensor:
        """x [B, T, M] -> [B, T, M]. mode 'chunked' (parallel over time) or 'recurrent' (token by token);
        the two give the same output."""
        B, T, M = x.shape
        H, K = self.config.n_heads, self.config.head_dim
        x = self.conv(x)
        q, k, v = self.qkv(x).view(B, T, 3, H, K).unbind(2)                  # each [B, T, H, K]
        if self.capture:  # for labs.attention.probe: the operands of the last call
            self.captured = tuple(t.detach() for t in (q, k, v, x))
        o = self.mix(q, k, v, x, mode)                                         # [B, T, H, K]
        return self.out(o.reshape(B, T, M))

    def mix(self, q, k, v, x, mode):  # pragma: no cover - interface
        """The operator: q, k, v [B, T, H, K] (and the conv output x [B, T, M]) -> o [B, T, H, K]."""
        raise NotImplementedError

    def state_numbers(self, seq_len: int) -> int:
        """Numbers of decoding state per sequence for this layer after seq_len tokens."""
        return state_numbers(self.config, seq_len)


class SoftmaxMixer(Mixer):
    """Causal softmax attention, or sliding-window attention when config.name is 'sliding_window'."""

    def mix(self, q, k, v, x, mode):
        """Softmax over the past (the last W keys with a window): o [B, T, H, K]."""
        window = self.config.window if self.config.name == "sliding_window" else None
        if mode == "recurrent":
            return softmax.softmax_attention_recurrent(q, k, v, window)
        return softmax.softmax_attention_parallel(q, k, v, window)


class LinearMixer(Mixer):
    """Linear attention with the elu+1 feature map (Katharopoulos et al. 2020)."""

    def mix(self, q, k, v, x, mode):
        """φ(q), φ(k) with φ = elu + 1, then linear attention: o [B, T, H, K]."""
        qf, kf = linear.elu_feature_map(q), linear.elu_feature_map(k)
        if mode == "recurrent":
            return linear.linear_attention_recurrent(qf, kf, v)[0]
        return linear.linear_attention_chunked(qf, kf, v, chunk_size=self.config.chunk_size)


class PowerMixer(Mixer):
    """Power attention of even degree p: scores (q·k)^p, a state of C(K+p−1, p) × K per head."""

    def mix(self, q, k, v, x, mode):
        """q, k scaled by 1/√K, then power attention of degree p: o [B, T, H, K]."""
        p = self.config.power
        # Scale keeps (q·k)^p in range at init; any constant cancels in the normaliser, so it only helps numerics.
        q, k = q / q.shape[-1] ** 0.5, k / k.shape[-1] ** 0.5
        if mode == "recurrent":
            return linear.power_attention_recurrent(q, k, v, p)[0]
        return linear.power_attention_chunked(q, k, v, p, chunk_size=self.config.chunk_size)


class DeltaMixer(Mixer):
    """DeltaNet / Gated DeltaNet / KDA: L2-normalised q, k; β = σ(W_β x); log α = logσ(W_α x) (scalar or per channel).

    deltanet_neg: β = 2σ(W_β x) ∈ (0, 2), so the transition I − β k kᵀ has the eigenvalue 1 − β ∈ (−1, 1) along k
    and can flip the sign of what the state holds there — enough to count bits mod 2 (Grazzi et al. 2025,
    'Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues', ICLR 2025, §4: with β = 2 a fixed key
    for bit 1 makes kᵀS alternate 0, 2v, 0, …). With β ∈ (0, 1) every eigenvalue is in [0, 1]: parity is out of reach.
    """

    def __init__(self, config: MixerConfig):
        super().__init__(config)
        H, K = config.n_heads, config.head_dim
        self.beta = nn.Linear(config.d_model, H)
        n_decay = {"deltanet": 0, "deltanet_neg": 0, "gated_deltanet": H, "kda": H * K}[config.name]
        self.decay = nn.Linear(config.d_model, n_decay) if n_decay else None
        if self.decay is not None:
            nn.init.constant_(self.decay.bias, 3.0)  # start near α ≈ 0.95: remember by default, learn to forget

    def gates(self, x: torch.Tensor, H: int, K: int):
        """β [B, T, H] and log α: None (DeltaNet), [B, T, H] (Gated DeltaNet) or [B, T, H, K] (KDA)."""
        B, T, _ = x.shape
        beta = torch.sigmoid(self.beta(x))
        if self.config.name == "deltanet_neg":
            beta = 2 * beta  # eigenvalues 1 − β ∈ (−1, 1): negative ones let the state flip sign (Grazzi et al. 2025)
        if self.decay is None:
            return beta, None
        g = F.logsigmoid(self.decay(x))                                         # log α ≤ 0
        return beta, (g.view(B, T, H, K) if self.config.name == "kda" else g)

    def mix(self, q, k, v, x, mode):
        """L2-normalised q, k and the gates β, α, then the delta rule: o [B, T, H, K]."""
        B, T, H, K = q.shape
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        beta, g = self.gates(x, H, K)
        if mode == "recurrent":
            return delta.delta_rule_recurrent(q, k, v, beta, g)[0]
        return delta.delta_rule_chunked(q, k, v, beta, g, chunk_size=self.config.chunk_size)[0]


_CLASSES = {"softmax": SoftmaxMixer, "sliding_window": SoftmaxMixer, "linear": LinearMixer,
            "deltanet": DeltaMixer, "deltanet_neg": DeltaMixer, "gated_deltanet": DeltaMixer, "kda": DeltaMixer,
            "power": PowerMixer}


def build_mixer(config: MixerConfig) -> Mixer:
    """The nn.Module for config.name (its class picked from the variant)."""
    return _CLASSES[config.name](config)


def state_numbers(config: MixerConfig, seq_len: int) -> int:
    """Decoding state of one layer for one sequence, in numbers.

    softmax: K and V for every past token, 2·T·M.  sliding window: 2·min(T, W)·M.
    linear: S (K×V per head) plus the normaliser z (K).  delta family: S only.  power: C(K+p−1, p)·(V+1) per head.
    """
    H, K = config.n_heads, config.head_dim
    if config.name == "softmax":
        return 2 * seq_len * config.d_model
    if config.name == "sliding_window":
        return 2 * min(seq_len, config.window) * config.d_model
    if config.name == "linear":
        return H * (K * K + K)
    if config.name == "power":
        E = linear.power_state_dim(K, config.power)
        return H * (E * K + E)
    return H * K * K
