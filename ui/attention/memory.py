"""The Memory at long context tab of the linear-vs-full attention page: cache size vs context for the chosen models
with a table at the chosen context, and the published Kimi Linear figures."""
from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from labs.attention import figures, memory


P = "attn"


def memory_figures(keys: list[str], context: int, bytes_per: int) -> None:
    """Cache size vs context for the chosen models, and a table at the chosen context with each figure's source."""
    lengths = [int(x) for x in torch.logspace(3, 6, 31).tolist()]
    st.plotly_chart(figures.memory_curves(keys, lengths, bytes_per), key=f"{P}_mem_chart")
    table = pd.DataFrame(memory.table(keys, [context], bytes_per)).drop(columns="context").rename(columns={
        "kv_cache_GiB": "KV cache (GiB)", "state_GiB": "fixed state (GiB)", "total_GiB": "total (GiB)"})
    st.dataframe(table, hide_index=True, width="stretch")


def kimi_published() -> None:
    st.info("**Published (Kimi Team 2025, *Kimi Linear* technical report / README):** up to **75% less KV cache** and "
            "up to **6× decoding throughput** at 1M context; time per output token **1.84 ms vs 11.48 ms** for full "
            "MLA at 1M. The 75% follows from the 3:1 ratio, as computed above; the throughput numbers are theirs, "
            "measured on their GPUs and kernels, not here.")
