"""The Mechanisms tab of the linear-vs-full attention page: each variant's equation, source code and paper, the table
of decoding state per variant, and the check that a mixer's recurrent and chunked forms agree."""
from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from labs.attention import delta, linear, softmax
from labs.attention.mixers import VARIANTS, DeltaMixer, MixerConfig, build_mixer, state_numbers


EQUATIONS = {
    "softmax": r"o_t=\sum_{s\le t}\operatorname{softmax}_s\!\left(\tfrac{q_t^\top k_s}{\sqrt{K}}\right)v_s"
               r"\qquad\text{state: all past }k_s,v_s\ (\text{KV cache},\ 2TD)",
    "sliding_window": r"o_t=\sum_{t-W<s\le t}\operatorname{softmax}_s\!\left(\tfrac{q_t^\top k_s}{\sqrt K}\right)v_s"
                      r"\qquad\text{state: the last }W\text{ keys and values}",
    "linear": r"S_t=S_{t-1}+\phi(k_t)v_t^\top,\quad z_t=z_{t-1}+\phi(k_t),\quad "
              r"o_t=\frac{S_t^\top\phi(q_t)}{\phi(q_t)^\top z_t},\quad \phi=\mathrm{elu}+1",
    "deltanet": r"S_t=(I-\beta_t k_t k_t^\top)\,S_{t-1}+\beta_t k_t v_t^\top,\quad o_t=S_t^\top q_t",
    "deltanet_neg": r"S_t=(I-\beta_t k_t k_t^\top)\,S_{t-1}+\beta_t k_t v_t^\top,"
                    r"\quad \beta_t=2\sigma(w_\beta^\top x_t)\in(0,2):\ \text{eigenvalue }1-\beta_t\in(-1,1)",
    "gated_deltanet": r"S_t=\alpha_t\,(I-\beta_t k_t k_t^\top)\,S_{t-1}+\beta_t k_t v_t^\top,"
                      r"\quad \alpha_t\in(0,1)",
    "kda": r"S_t=(I-\beta_t k_t k_t^\top)\,\mathrm{Diag}(\alpha_t)\,S_{t-1}+\beta_t k_t v_t^\top,"
           r"\quad \alpha_t\in(0,1)^K",
    "power": r"o_t=\frac{\sum_{s\le t}(q_t^\top k_s)^p\,v_s}{\sum_{s\le t}(q_t^\top k_s)^p}"
             r"=\frac{S_t^\top\phi_p(q_t)}{\phi_p(q_t)^\top z_t},\quad S\in\mathbb R^{\binom{K+p-1}{p}\times V}",
}
SOURCES = {
    "softmax": (softmax.softmax_attention_parallel, softmax.softmax_attention_recurrent),
    "sliding_window": (softmax.sliding_window_chunked, softmax.softmax_attention_recurrent),
    "linear": (linear.linear_attention_recurrent, linear.linear_attention_chunked),
    "deltanet": (delta.delta_rule_recurrent, delta.delta_rule_chunked),
    "deltanet_neg": (DeltaMixer.gates, delta.delta_rule_recurrent, delta.delta_rule_chunked),
    "gated_deltanet": (delta.delta_rule_recurrent, delta.delta_rule_chunked),
    "kda": (delta.delta_rule_recurrent, delta.delta_rule_chunked),
    "power": (linear.sympow_embedding, linear.power_attention_recurrent, linear.power_attention_chunked),
}
PAPERS = {
    "softmax": "Vaswani et al. 2017, Attention Is All You Need, eq. 1",
    "sliding_window": "Beltagy et al. 2020, Longformer; Child et al. 2019",
    "linear": "Katharopoulos et al. 2020, Transformers are RNNs, eqs. 4–7",
    "deltanet": "Schlag et al. 2021; Yang et al. 2024, Parallelizing Linear Transformers with the Delta Rule",
    "deltanet_neg": "Grazzi et al. 2025, Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues "
                    "(ICLR 2025)",
    "gated_deltanet": "Yang, Kautz & Hatamizadeh 2025, Gated Delta Networks, eq. 10",
    "kda": "Kimi Team 2025, Kimi Linear: An Expressive, Efficient Attention Architecture (KDA, eq. 1)",
    "power": "Buckman, Gelada & Zhang 2024, Symmetric Power Transformers (Manifest AI)",
}


def mechanism_table() -> None:
    """Decoding state of one layer per variant at 1k and 1M tokens, prefill cost, and the paper."""
    rows = []
    for name in VARIANTS:
        c = MixerConfig(name=name, d_model=1024, n_heads=16, window=4096)
        rows.append({"variant": VARIANTS[name], "state after 1k tokens": f"{state_numbers(c, 1_000):,}",
                     "state after 1M tokens": f"{state_numbers(c, 1_000_000):,}",
                     "prefill cost": "O(T²)" if name == "softmax" else ("O(T·W)" if name == "sliding_window"
                                                                        else "O(T)"),
                     "paper": PAPERS[name]})
    st.caption("Numbers of decoding state in one layer, d = 1024 with 16 heads of 64 (window 4096, power p = 2):")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def recurrent_vs_chunked(variant: str, tokens: int = 40) -> float:
    """Largest |recurrent − chunked| output of one small random mixer on a random sequence (float32 round-off)."""
    torch.manual_seed(0)
    mixer = build_mixer(MixerConfig(name=variant, d_model=32, n_heads=2, window=8, chunk_size=16))
    x = torch.randn(1, tokens, 32)  # (B, T, M)
    with torch.no_grad():
        return (mixer(x) - mixer(x, mode="recurrent")).abs().max().item()
