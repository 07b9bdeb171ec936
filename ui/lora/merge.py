"""The Merge check tab of the LoRA rank explorer: the logit difference merged vs unmerged, the adapter's effect, both
speeds and both greedy texts."""
from __future__ import annotations

import streamlit as st


def merge_figures(result: dict) -> None:
    """Logit difference merged vs unmerged, the adapter's effect, both speeds and both greedy texts."""
    m = st.columns(4)
    m[0].metric("max |Δlogits| unmerged − merged", f"{result['max_abs_diff']:.2e}",
                help=f"over {result['tokens']} token positions; the largest logit is {result['max_abs_logit']:.1f}")
    m[1].metric("max |Δlogits| adapter − base", f"{result['adapter_effect']:.3f}",
                help="How much the adapter changes the model at all.")
    m[2].metric("Unmerged, tokens/s", f"{result['unmerged_tokens_per_s']:.1f}")
    m[3].metric("Merged, tokens/s", f"{result['merged_tokens_per_s']:.1f}",
                f"{100 * (result['merged_tokens_per_s'] / result['unmerged_tokens_per_s'] - 1):+.0f} %")
    st.caption(("Same greedy text merged and unmerged. " if result["same_text"] else
                "The greedy texts differ (rounding can flip a near tie). ") +
               "The difference is float rounding (about 1e-6 of the logits’ size in fp32): merging is exact up to "
               "the order of the arithmetic. Speeds on this machine, now; other work on the machine shifts them.")
    c = st.columns(2)
    c[0].text_area("Unmerged output", result["text_unmerged"], disabled=True, key="lora_merge_out_a")
    c[1].text_area("Merged output", result["text_merged"], disabled=True, key="lora_merge_out_b")
