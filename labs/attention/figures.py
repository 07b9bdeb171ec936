"""Plotly figures for the attention lab (data in, figure out; no streamlit)."""
from __future__ import annotations

import plotly.graph_objects as go

from labs.attention import cost, memory
from labs.attention.mixers import VARIANTS
from labs.core import charts


def _color(variant: str) -> str:
    return charts.PALETTE[list(VARIANTS).index(variant) % len(charts.PALETTE)] if variant in VARIANTS else "#444"


def loglog(rows: list[dict], key: str, *, title: str, y: str, slope_tail: int = 3) -> go.Figure:
    """One line per variant of `key` vs T on log-log axes; the legend carries the fitted slope."""
    fig = go.Figure()
    for variant in dict.fromkeys(r["variant"] for r in rows):
        pts = sorted((r["T"], r[key]) for r in rows if r["variant"] == variant and r.get(key))
        if not pts:
            continue
        slope = cost.fit_slope(rows, variant, key, slope_tail)
        name = VARIANTS.get(variant, variant) + (f" · slope {slope:.2f}" if slope is not None else "")
        fig.add_scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=name,
                        line=dict(color=_color(variant)))
    fig.update_xaxes(type="log", title="sequence length T (tokens)")
    fig.update_yaxes(type="log", title=y)
    fig.update_layout(title=title, height=380, template="plotly_white", margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="v", font=dict(size=11)))
    return fig


def memory_curves(keys: list[str], lengths: list[int], bytes_per_number: int = 2) -> go.Figure:
    """Decoding memory per sequence (KV cache + recurrent state, GiB) against context length (tokens),
    log-log, one line per architecture in `memory.CONFIGS`."""
    fig = go.Figure()
    for i, key in enumerate(keys):
        config = memory.CONFIGS[key]
        ys = [memory.cache_bytes(config, T, bytes_per_number)["total"] / 2**30 for T in lengths]
        fig.add_scatter(x=lengths, y=ys, mode="lines", name=config.name, line=dict(color=charts.PALETTE[i]))
    fig.update_xaxes(type="log", title="context (tokens)")
    fig.update_yaxes(type="log", title="GiB per sequence")
    fig.update_layout(title="Decoding memory per sequence: KV cache + recurrent state", height=380,
                      template="plotly_white", margin=dict(l=10, r=10, t=40, b=10))
    return fig


def accuracy_bars(accuracy: dict[str, float], chance: float) -> go.Figure:
    """Final accuracy per mixer (fraction of scored positions, 0–1) as bars, with chance as a dashed line."""
    names = list(accuracy)
    return charts.bars([VARIANTS.get(n, n) for n in names], [accuracy[n] for n in names], title="Final accuracy",
                       y="accuracy on scored positions", hline=chance, hline_label="chance",
                       text=[f"{accuracy[n]:.2f}" for n in names])


def retrieval_curves(trace: dict) -> go.Figure:
    """How well an early key is still retrieved as more tokens are written (cosine, from `probe`)."""
    series = {f"key at position {j}": (list(range(len(v))), v) for j, v in trace["retrieval"].items()}
    return charts.curves(series, title="Retrieval of an early key",
                         x="tokens written since (n)", y="cos(S_{j+n}ᵀ k_j, v_j)")


def state_norm(trace: dict) -> go.Figure:
    """‖S_t‖_F of head 0 over time t (tokens), from `probe`: a state that only adds grows without bound."""
    return charts.curves({"‖S_t‖": (list(range(len(trace["norm"]))), trace["norm"])},
                         title="State size over time (Frobenius norm, head 0)", x="t", y="‖S_t‖_F")


def pairs_sweep(accuracy: dict[str, dict], chance: float | None = None) -> go.Figure:
    """MQAR accuracy against the number of key-value pairs, one line per mixer (labs.attention.sweep)."""
    return size_sweep(accuracy, chance, x="key-value pairs to remember", y="held-out accuracy (query positions)",
                      title="MQAR: recall as the pairs grow")


def size_sweep(accuracy: dict[str, dict], chance: float | None, *, x: str, y: str, title: str) -> go.Figure:
    """Held-out accuracy against a task's size (pairs, tokens to reverse, bits), one line per mixer, chance dotted."""
    fig = go.Figure()
    for mixer, acc in accuracy.items():
        pts = sorted((int(p), a) for p, a in acc.items())
        fig.add_scatter(x=[p for p, _ in pts], y=[a for _, a in pts], mode="lines+markers",
                        name=VARIANTS.get(mixer, mixer), line=dict(color=_color(mixer)))
    if chance is not None:
        fig.add_hline(y=chance, line_dash="dot", line_color="#999", annotation_text="chance")
    fig.update_xaxes(type="log", title=x, tickvals=sorted({int(p) for acc in accuracy.values() for p in acc}))
    fig.update_yaxes(title=y, range=[0, 1.05])
    fig.update_layout(title=title, height=380, template="plotly_white", margin=dict(l=10, r=10, t=40, b=10))
    return fig
