"""KV cache vs recurrent state: how much memory one sequence needs at decoding time, for real configurations.

A softmax (or MLA) layer keeps something for every past token, so its cache grows linearly with context.
A linear-attention layer (KDA, Gated DeltaNet, …) keeps a fixed-size state S ∈ R^{K×V} per head, whatever the
context. A hybrid that uses full attention in 1 layer of every 4 keeps 1/4 of the cache: that ratio alone gives
Kimi Linear's "up to 75% less KV cache" (the fixed states become negligible as the context grows).

All numbers are counts of stored numbers per sequence; multiply by bytes_per_number (2 for bf16).
"""
from __future__ import annotations

from dataclasses import dataclass

from labs.attention.linear import power_state_dim
from labs.runs import lessons


@dataclass(frozen=True)
class LayerKind:
    """A group of identical layers and what each keeps while decoding, in numbers (not bytes)."""
    name: str
    count: int  # layers of this kind
    per_token: int  # numbers cached per token per layer (K and V, or MLA's latent)
    fixed: int = 0  # numbers of fixed-size state per layer (recurrent state, conv buffer)
    note: str = ""


@dataclass(frozen=True)
class ArchConfig:
    """A model's decoding memory recipe: its layer groups and where the figures come from."""
    key: str
    name: str
    layers: tuple[LayerKind, ...]
    source: str

    @property
    def n_layers(self) -> int:
        """Layers in the model, all kinds together."""
        return sum(layer.count for layer in self.layers)


def gqa_layer(count: int, kv_heads: int, head_dim: int) -> LayerKind:
    """`count` softmax layers with grouped-query attention: K and V per token, 2 · kv_heads · head_dim numbers."""
    return LayerKind("softmax (GQA)", count, 2 * kv_heads * head_dim, note=f"K and V: 2 × {kv_heads} KV heads × {head_dim}")


def mla_layer(count: int, kv_lora_rank: int = 512, rope_dim: int = 64) -> LayerKind:
    # MLA (DeepSeek-V2, 2024, §2.1.2) caches one compressed latent c_KV plus the decoupled RoPE key per token.
    """`count` multi-head latent attention layers: one compressed latent plus the RoPE key per token."""
    return LayerKind("MLA", count, kv_lora_rank + rope_dim, note=f"latent {kv_lora_rank} + RoPE key {rope_dim}")


def kda_layer(count: int, heads: int = 32, head_dim: int = 128, conv: int = 4) -> LayerKind:
    # State S: heads × K × V; plus the short-convolution buffers of q, k, v (conv − 1 past inputs each).
    """`count` KDA layers: no per-token cache, a fixed state of heads · K · V numbers plus conv buffers."""
    return LayerKind("KDA", count, 0, fixed=heads * head_dim * head_dim + 3 * heads * head_dim * (conv - 1),
                     note=f"S: {heads} heads × {head_dim} × {head_dim}, + conv buffers")


# Architecture facts from the models' published config.json files.
CONFIGS: dict[str, ArchConfig] = {
    "smollm2-135m": ArchConfig("smollm2-135m", "SmolLM2-135M (Llama-like, this app's model)",
                               (gqa_layer(30, 3, 64),),
                               "HuggingFaceTB/SmolLM2-135M config.json: 30 layers, 3 KV heads, head dim 64"),
    "llama3-8b": ArchConfig("llama3-8b", "Llama-3-8B", (gqa_layer(32, 8, 128),),
                            "meta-llama/Meta-Llama-3-8B config.json: 32 layers, 8 KV heads, head dim 128"),
    "kimi-linear-mla": ArchConfig("kimi-linear-mla", "Kimi Linear shape, all 27 layers MLA (baseline)",
                                  (mla_layer(27),),
                                  "Kimi-Linear-48B-A3B config: 27 layers; MLA kv_lora_rank 512, RoPE dim 64"),
    "kimi-linear": ArchConfig("kimi-linear", "Kimi Linear 48B-A3B (20 KDA + 7 MLA)",
                              (kda_layer(20), mla_layer(7)),
                              "Kimi-Linear-48B-A3B config: full attention at layers 4, 8, …, 24, 27; "
                              "KDA 32 heads × 128"),
    "ideal-3to1": ArchConfig("ideal-3to1", "Ideal 3:1 hybrid, 24 layers (18 KDA + 6 MLA)",
                             (kda_layer(18), mla_layer(6)),
                             "The 3 KDA : 1 MLA layer ratio of the Kimi Linear report (2025)"),
}


def cache_numbers(config: ArchConfig, seq_len: int, batch: int = 1) -> dict[str, float]:
    """{'kv': numbers growing with context, 'state': fixed-size numbers, 'total': both} for `batch` sequences."""
    kv = sum(layer.count * layer.per_token for layer in config.layers) * seq_len * batch
    state = sum(layer.count * layer.fixed for layer in config.layers) * batch
    return {"kv": float(kv), "state": float(state), "total": float(kv + state)}


def cache_bytes(config: ArchConfig, seq_len: int, bytes_per_number: int = 2, batch: int = 1) -> dict[str, float]:
    """`cache_numbers` in bytes: each number takes `bytes_per_number` (2 for bf16)."""
    return {k: v * bytes_per_number for k, v in cache_numbers(config, seq_len, batch).items()}


def reduction(hybrid: ArchConfig, baseline: ArchConfig, seq_len: int) -> float:
    """1 − memory(hybrid) / memory(baseline) at this context length, the state included."""
    return 1.0 - cache_numbers(hybrid, seq_len)["total"] / cache_numbers(baseline, seq_len)["total"]


def ratio_reduction(linear_layers: int, full_layers: int) -> float:
    """The long-context limit: only full-attention layers grow, so the saving is linear / (linear + full).
    3:1 -> 0.75, the Kimi Linear report's 'up to 75% less KV cache'."""
    return linear_layers / (linear_layers + full_layers)


def hybrid_verdict(context: int):
    """C12 at `context` tokens: the ideal 3:1 hybrid vs the same depth of MLA layers (labs.runs.lessons.hybrid_cache), with
    Kimi Linear's real 20:7 layout reported next to it."""
    hybrid = CONFIGS["ideal-3to1"]
    full = ArchConfig("all-mla-24", "24 MLA layers", (mla_layer(hybrid.n_layers),), "baseline")
    h, f = cache_numbers(hybrid, context), cache_numbers(full, context)
    verdict = lessons.hybrid_cache(1 - h["kv"] / f["kv"], reduction(hybrid, full, context), context)
    verdict.figures["kimi_linear_20_7_reduction"] = reduction(CONFIGS["kimi-linear"], CONFIGS["kimi-linear-mla"],
                                                              context)
    return verdict


def table(keys: list[str], lengths: list[int], bytes_per_number: int = 2) -> list[dict]:
    """Rows {model, context, kv_cache_GiB, state_GiB, total_GiB, source} for the page's table."""
    rows = []
    for key in keys:
        config = CONFIGS[key]
        for T in lengths:
            b = cache_bytes(config, T, bytes_per_number)
            rows.append({"model": config.name, "context": T, "kv_cache_GiB": b["kv"] / 2**30,
                         "state_GiB": b["state"] / 2**30, "total_GiB": b["total"] / 2**30, "source": config.source})
    return rows


def power_state_table(head_dim: int = 64, degrees: tuple[int, ...] = (1, 2, 3, 4, 6)) -> list[dict]:
    """State per head for power attention of degree p: C(K+p−1, p) features × V values (vs K×V for p = 1)."""
    rows = []
    for p in degrees:
        m = power_state_dim(head_dim, p)
        rows.append({"p": p, "features C(K+p−1,p)": m, "state per head (numbers)": m * head_dim,
                     "vs linear (p=1)": m / head_dim, "full tensor power K^p": head_dim**p})
    return rows
