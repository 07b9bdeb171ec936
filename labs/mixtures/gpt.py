"""A small GPT decoder written from scratch: the nanoGPT recipe in one readable file.

Shape legend (the repo's, labs/__init__.py): B batch, T time (sequence position), M = n_embd model width,
H heads, D head width (M = H * D), V vocabulary size.

    cfg = GPTConfig(vocab_size=256, block_size=128, n_layer=2, n_head=4, n_embd=128)
    model = GPT(cfg)
    logits, loss = model(idx, targets)            # idx, targets: (B, T) int64; logits (B, T, V)
    per_token = model.token_losses(idx, targets)  # (B, T) cross-entropy of each next-token prediction

Radford et al. 2019 (GPT-2): pre-norm blocks, learned position embeddings, tied input/output embeddings.
Vaswani et al. 2017, eq. 1: Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V, here with a causal mask.
The attention lab reuses `causal_attention` (the naive reference) and `GPT` itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from labs.core.errors import ConfigError


@dataclass(frozen=True)
class GPTConfig:
    """Size of a GPT: vocab_size V, context block_size in tokens, n_layer L, n_head H, width n_embd M."""

    vocab_size: int = 256  # bytes: every text (any language, code, uploads) encodes, no tokenizer to train
    block_size: int = 128  # context length; 128 bytes is a couple of lines of code or prose
    n_layer: int = 2  # two blocks already learn per-domain statistics; each extra block costs ~1/3 more time
    n_head: int = 4  # head dim 32 at n_embd 128
    n_embd: int = 128  # small enough for ~tens of ms per step on two CPU cores
    dropout: float = 0.0  # tiny runs underfit; dropout would only slow them down
    bias: bool = False  # no biases in Linear/LayerNorm: a bit faster, no worse (nanoGPT's finding)
    sdpa: bool = True  # use torch's fused scaled_dot_product_attention; False = the naive reference below

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}); "
                             "pick a head count that divides the width, e.g. 4 for 128.")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout must be in [0, 1).")


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Naive causal softmax attention, the reference the fused kernel must match.

    q, k, v: [B, H, T, D]  ->  out: [B, H, T, D]
    """
    B, H, T, D = q.shape
    scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(D)  # (B, H, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)  # True above the diagonal
    scores = scores.masked_fill(future, float("-inf"))  # position t sees positions <= t only
    weights = scores.softmax(dim=-1)  # (B, H, T, T), rows sum to 1
    return (weights @ v.float()).to(q.dtype)  # (B, H, T, D)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one fused q/k/v projection, H heads of width D = M / H, out projection."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.sdpa, self.dropout = cfg.n_head, cfg.sdpa, cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # the three projections in one matmul
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, M) -> (B, T, M); position t attends to positions <= t only."""
        B, T, M = x.shape
        q, k, v = self.qkv(x).split(M, dim=2)  # 3 x (B, T, M)
        q, k, v = (t.view(B, T, self.n_head, M // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.dropout if self.training else 0.0)  # (B, H, T, D)
        else:
            y = causal_attention(q, k, v)  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(B, T, M)  # heads side by side again: (B, T, M)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: M -> 4M -> M with a GELU in between (GPT-2)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)  # GPT-2's 4x expansion
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, M) -> (B, T, M), each position on its own."""
        return self.drop(self.proj(F.gelu(self.fc(x))))  # (B, T, M)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, M) -> (B, T, M)."""
        x = x + self.attn(self.ln_1(x))  # (B, T, M)
        return x + self.mlp(self.ln_2(x))  # (B, T, M)


class GPT(nn.Module):
    """The decoder: token + learned position embeddings, L pre-norm blocks, final LayerNorm, tied output head."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)  # token embeddings (V, M)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)  # learned positions (T, M)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017), as in GPT-2
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2 * n_layer)
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        """Number of parameters (numbers, not bytes); the tied embedding / output matrix counts once."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx: (B, T) token ids -> logits (B, T, V); with targets (B, T) also the mean cross-entropy."""
        B, T = idx.shape
        if T > self.cfg.block_size:
            raise ConfigError(f"Sequence of {T} tokens is longer than the context ({self.cfg.block_size}).")
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, M)
        for block in self.blocks:
            x = block(x)  # (B, T, M)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    def token_losses(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of every next-token prediction: (B, T) in nats (divide by ln 2 for bits)."""
        logits, _ = self(idx)  # (B, T, V)
        B, T, V = logits.shape
        return F.cross_entropy(logits.float().view(B * T, V), targets.reshape(B * T), reduction="none").view(B, T)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.8, top_k: int | None = 40,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Append max_new_tokens sampled tokens to idx (B, T); the context window slides past block_size."""
        for _ in range(max_new_tokens):
            window = idx[:, -self.cfg.block_size:]  # (B, <=block_size)
            logits, _ = self(window)
            logits = logits[:, -1, :].float() / max(temperature, 1e-5)  # (B, V) the last position only
            if top_k:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx


def flops_per_token(cfg: GPTConfig, seq_len: int | None = None) -> float:
    """Training FLOPs per token, Kaplan et al. 2020, Table 1: C_forward = 2N + 2 n_layer n_ctx d_attn, and
    training (forward + backward) = 3 x forward. N counts the matmul weights (embedding lookups are free; the
    tied output head is not)."""
    T = seq_len or cfg.block_size
    per_layer = 12 * cfg.n_embd ** 2  # qkv 3M^2 + proj M^2 + mlp 8M^2
    n_matmul = cfg.n_layer * per_layer + cfg.n_embd * cfg.vocab_size  # + the output head
    return 6 * n_matmul + 3 * 2 * cfg.n_layer * T * cfg.n_embd
