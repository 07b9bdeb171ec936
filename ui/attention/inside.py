"""The Look inside tab of the linear-vs-full attention page: a stored task run's trained model (loaded once), and one
held-out sequence through it: predictions, then a linear mixer's state or a softmax mixer's attention map."""
from __future__ import annotations

import streamlit as st
import torch

from labs.attention import figures, model, probe, tasks
from labs.attention.mixers import LINEAR_FAMILY
from labs.core import charts


P = "attn"


@st.cache_resource(max_entries=4, show_spinner=False)
def trained_model(artifacts: str, config, mixer: str):
    """A stored task run's trained model, loaded once (not on every rerun of the page); None if its files are gone."""
    return model.load_trained(artifacts, config, mixer)


def look_inside(lm, task_config, which: str, layer: int, sample: int) -> None:
    """One held-out sequence through a trained model: inputs, labels and predictions, then the state of a linear
    mixer (norm, what it still retrieves) or the attention map of a softmax one."""
    inputs, labels = tasks.generate(task_config, sample + 1, seed=4242)
    inputs, labels = inputs[-1:], labels[-1:]  # (1, T)
    captured = probe.capture(lm, inputs)
    with torch.no_grad():
        pred = lm(inputs).argmax(-1)[0]
    scored = labels[0] != tasks.IGNORE
    shown = " ".join(str(x) if x != tasks.IGNORE else "·" for x in labels[0].tolist())
    st.caption(f"inputs: {' '.join(map(str, inputs[0].tolist()))}  \nlabels: {shown}  \n"
               f"predicted at the scored positions: {' '.join(map(str, pred[scored].tolist()))}")
    if which in LINEAR_FAMILY:
        trace = probe.state_trace(lm, captured, layer)
        left, right = st.columns(2)
        left.plotly_chart(figures.state_norm(trace), key=f"{P}_in_norm")
        right.plotly_chart(figures.retrieval_curves(trace), key=f"{P}_in_retr")
        st.caption("Linear attention only adds, so old keys get buried under new ones; the delta rule "
                   "overwrites what a key maps to; gates (Gated DeltaNet, KDA) decay old content.")
        return
    att = probe.attention_map(lm, captured, layer)  # (H, T, T)
    axis = [f"{i}:{t}" for i, t in enumerate(inputs[0].tolist())]
    heads = st.columns(att.shape[0])
    for h in range(att.shape[0]):
        heads[h].plotly_chart(charts.heatmap(att[h].tolist(), axis, axis, title=f"head {h}", zmin=0, zmax=1,
                                             text_fmt=None, x="key", y="query"), key=f"{P}_in_att_{h}")
    st.caption("Softmax attention keeps every past token and can look any of them up — the KV "
               "cache is the price.")
