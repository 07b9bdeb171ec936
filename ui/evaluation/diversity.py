"""The Diversity tab of the evaluation page: the sampling knobs (model, temperatures, samples, prompt) and the results
(distinct-n and self-similarity per temperature, and the samples themselves)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from labs.evaluation import charts
from labs.runs import jobs
from labs.runs.results import load_result


P = "eval"


def diversity_results(run: jobs.Run | None) -> None:
    div_result = load_result(run)
    if div_result is None or not div_result.data["table"]:
        return
    div = div_result.data
    st.plotly_chart(charts.diversity_chart(div["table"]), key=f"{P}_div_chart")
    st.dataframe(pd.DataFrame(div["table"]), hide_index=True, key=f"{P}_div_table")
    with st.expander("The samples"):
        for t, texts in div["samples"].items():
            st.markdown(f"**T = {t}**")
            st.text("\n".join(f"{i + 1}. {x.strip()}" for i, x in enumerate(texts)))


def diversity_knobs(causal: list[str], names: dict[str, str]) -> tuple[dict, bool]:
    """The sampling widgets as DiversityConfig's fields, and whether to measure embedding self-similarity."""
    c = st.columns(4)
    div_model = c[0].selectbox("Model", causal, format_func=names.get, key=f"{P}_div_model",
                               help="The model to sample from.")
    temps = c[1].multiselect("Temperatures", [0.2, 0.5, 0.7, 1.0, 1.3, 1.5, 2.0], [0.2, 0.7, 1.0, 1.5],
                             key=f"{P}_div_temps", help="Each temperature gets its own set of samples.")
    n_samples = c[2].slider("Samples per temperature", 2, 10, 4, key=f"{P}_div_n",
                            help="More samples = steadier numbers, longer run (~1 s per sample on 2 cores).")
    div_tokens = c[3].slider("Tokens per sample", 8, 80, 24, key=f"{P}_div_tokens", help="Length of each sample.")
    div_prompt = st.text_input("Prompt", "Write one sentence about the sea.", key=f"{P}_div_prompt",
                               help="The same prompt is sampled every time.")
    use_embed = st.checkbox("Embedding self-similarity (loads all-MiniLM-L6-v2)", True, key=f"{P}_div_embed",
                            help="Off: only the word-overlap measures.")
    return dict(model_key=div_model, prompt=div_prompt, temperatures=tuple(sorted(temps)), samples=n_samples,
                max_new_tokens=div_tokens), use_embed
