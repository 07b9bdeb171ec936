"""Charts of the data-mixtures lab (plain data in, Plotly figure out): shares and epochs per source, training-set
growth."""
from __future__ import annotations

import plotly.graph_objects as go

from labs.core import charts
from labs.mixtures.calculator import growth_rows

# ---------------------------------------------------------------------------------------------------------------
# Charts for this lab (plain data in, Plotly figure out)
# ---------------------------------------------------------------------------------------------------------------


def shares_chart(rows: list[dict]):
    """Share of the training tokens vs share of the data, per source (grouped bars)."""
    names = [r["source"] for r in rows]
    fig = go.Figure()
    fig.add_bar(x=names, y=[100 * r["weight"] for r in rows], name="share of training tokens (weight)",
                marker_color=charts.PALETTE[0])
    fig.add_bar(x=names, y=[100 * r["share of data"] for r in rows], name="share of the data (size)",
                marker_color=charts.PALETTE[1])
    fig = charts._layout(fig, "Sampled more or less than its size?", "", "%")
    return fig.update_layout(barmode="group", legend=dict(y=-0.45, yanchor="top", x=0, xanchor="left"))


def epochs_chart(rows: list[dict], threshold: float):
    """Computed epochs per source, the published figure beside it, lines at 1 epoch and at the threshold."""
    names = [r["source"] for r in rows]
    fig = go.Figure()
    fig.add_bar(x=names, y=[r["epochs"] for r in rows], name="computed: weight x budget / size",
                marker_color=[charts.PALETTE[3] if r["repeated"] else charts.PALETTE[0] for r in rows],
                text=[f"{r['epochs']:.2f}" for r in rows], textposition="auto")
    if any(r["published epochs"] is not None for r in rows):
        fig.add_bar(x=names, y=[r["published epochs"] for r in rows], name="published",
                    marker_color=charts.PALETTE[8],
                    text=[f"{r['published epochs']}" if r["published epochs"] is not None else "" for r in rows],
                    textposition="auto")
    fig.add_hline(y=1, line_dash="dot", annotation_text="1 epoch (every token seen once)")
    fig.add_hline(y=threshold, line_dash="dash", line_color=charts.PALETTE[3],
                  annotation_text=f"{threshold:g} epochs: flagged as repeated")
    fig = charts._layout(fig, "Epochs per source", "", "epochs")
    return fig.update_layout(barmode="group", legend=dict(y=-0.45, yanchor="top", x=0, xanchor="left"))


def growth_chart():
    """Training tokens of GPT-3 -> LLaMA 1 -> 2 -> 3 (log scale), with tokens per parameter in the labels."""
    rows = growth_rows()
    fig = go.Figure(go.Bar(
        x=[f"{r['model']} ({r['year']})" for r in rows], y=[r["tokens (B)"] for r in rows],
        text=[f"{r['tokens (B)'] / 1000:g}T tokens · {r['tokens per parameter']:g} tok/param" for r in rows],
        textposition="outside", marker_color=[charts.PALETTE[2] if r["model"] == "Phi-3-mini" else charts.PALETTE[0]
                                              for r in rows],
        customdata=[[r["params (B)"], r["source"]] for r in rows],
        hovertemplate="%{x}<br>%{y:,}B tokens<br>%{customdata[0]}B parameters<br>%{customdata[1]}<extra></extra>"))
    fig = charts._layout(fig, "Training tokens, published (log scale)", "", "tokens (billions)", log_y=True, height=380)
    fig.update_yaxes(range=[2, 4.7])
    return fig
