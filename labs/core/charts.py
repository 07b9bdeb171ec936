"""Plotly figure builders shared by every page: data in, figure out (no streamlit here)."""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import plotly.graph_objects as go


PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC"]


def ema(values: Sequence[float], smoothing: float = 0.9) -> list[float]:
    """TensorBoard-style exponential moving average with bias correction (smoothing 0 = raw)."""
    out, avg, n = [], 0.0, 0
    for v in values:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            out.append(float("nan"))
            continue
        n += 1
        avg = smoothing * avg + (1 - smoothing) * v
        out.append(avg / (1 - smoothing**n))
    return out


def layout(fig: go.Figure, title: str, x: str, y: str, log_y: bool = False, height: int = 340) -> go.Figure:
    """The shared look: title, axis titles, legend on top, white template."""
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1),
                      template="plotly_white")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


_layout = layout  # older name


def curves(series: dict[str, tuple[Sequence[float], Sequence[float]]], *, title: str = "", x: str = "step",
           y: str = "loss", smoothing: float = 0.0, log_y: bool = False, dash: dict[str, str] | None = None) -> go.Figure:
    """Line chart of named (xs, ys) series; with smoothing > 0 the raw line is faint and the EMA bold."""
    fig = go.Figure()
    for i, (name, (xs, ys)) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        line_dash = (dash or {}).get(name)
        if smoothing > 0 and len(ys) > 1:
            fig.add_scatter(x=list(xs), y=list(ys), name=f"{name} (raw)", mode="lines", opacity=0.3,
                            line=dict(color=color, dash=line_dash), showlegend=False)
            fig.add_scatter(x=list(xs), y=ema(ys, smoothing), name=name, mode="lines",
                            line=dict(color=color, width=2.5, dash=line_dash))
        else:
            fig.add_scatter(x=list(xs), y=list(ys), name=name, mode="lines+markers" if len(ys) < 30 else "lines",
                            line=dict(color=color, dash=line_dash))
    return layout(fig, title, x, y, log_y)


def metric_series(metrics: Iterable[dict], keys: Sequence[str], x: str = "step") -> dict[str, tuple[list, list]]:
    """Pull named series out of a run's metrics rows (rows missing a key are skipped for that key)."""
    rows = list(metrics)
    out = {}
    for key in keys:
        pts = [(r[x], r[key]) for r in rows if key in r and r[key] is not None and x in r]
        if pts:
            out[key] = ([p[0] for p in pts], [p[1] for p in pts])
    return out


def run_curves(metrics: Iterable[dict], keys: Sequence[str], *, title: str = "", y: str = "",
               smoothing: float = 0.6, log_y: bool = False) -> go.Figure:
    """Live training curves of one run: raw + smoothed for each key."""
    return curves(metric_series(metrics, keys), title=title, y=y or ", ".join(keys), smoothing=smoothing, log_y=log_y)


def overlay(runs: dict[str, Iterable[dict]], key: str, *, title: str = "", smoothing: float = 0.6,
            log_y: bool = False) -> go.Figure:
    """One metric from several runs on one chart (labels -> metrics rows)."""
    series = {}
    for label, metrics in runs.items():
        s = metric_series(metrics, [key])
        if key in s:
            series[label] = s[key]
    return curves(series, title=title or key, y=key, smoothing=smoothing, log_y=log_y)


def bars(labels: Sequence[str], values: Sequence[float], *, title: str = "", y: str = "", errors: Sequence[float] | None = None,
         hline: float | None = None, hline_label: str = "", color: str | None = None, text: Sequence[str] | None = None,
         horizontal: bool = False) -> go.Figure:
    """Bar chart with optional error bars and a reference line (e.g. random guessing)."""
    kwargs = dict(marker_color=color or PALETTE[0], text=text, textposition="auto")
    if horizontal:
        fig = go.Figure(go.Bar(y=list(labels), x=list(values), orientation="h",
                               error_x=dict(type="data", array=list(errors)) if errors is not None else None, **kwargs))
    else:
        fig = go.Figure(go.Bar(x=list(labels), y=list(values),
                               error_y=dict(type="data", array=list(errors)) if errors is not None else None, **kwargs))
    if hline is not None:
        if horizontal:
            fig.add_vline(x=hline, line_dash="dash", annotation_text=hline_label)
        else:
            fig.add_hline(y=hline, line_dash="dash", annotation_text=hline_label)
    return layout(fig, title, "", y)


def heatmap(z, x_labels: Sequence[str], y_labels: Sequence[str], *, title: str = "", zmin=None, zmax=None,
            colorscale: str = "Viridis", x: str = "", y: str = "", text_fmt: str | None = ".2f") -> go.Figure:
    """A heatmap of z (rows y_labels × columns x_labels), each cell printed with `text_fmt` (None: no text)."""
    fig = go.Figure(go.Heatmap(z=z, x=list(x_labels), y=list(y_labels), zmin=zmin, zmax=zmax, colorscale=colorscale,
                               texttemplate="%{z:" + text_fmt + "}" if text_fmt else None))
    return layout(fig, title, x, y)


def two_axis(xs: Sequence[float], left: tuple[str, Sequence[float]], right: tuple[str, Sequence[float]], *,
             title: str = "", x: str = "", log_x: bool = False, left_range: Sequence[float] | None = None) -> go.Figure:
    """Two measures against one x in one chart: `left` on the left axis, `right` (dashed) on the right axis."""
    fig = go.Figure()
    fig.add_scatter(x=list(xs), y=list(left[1]), name=left[0], mode="lines+markers", line=dict(color=PALETTE[0]))
    fig.add_scatter(x=list(xs), y=list(right[1]), name=right[0], mode="lines+markers", yaxis="y2",
                    line=dict(color=PALETTE[1], dash="dash"))
    layout(fig, title, x, left[0])
    fig.update_layout(yaxis=dict(range=list(left_range) if left_range else None),
                      yaxis2=dict(title=right[0], overlaying="y", side="right", showgrid=False))
    if log_x:
        fig.update_xaxes(type="log", tickvals=list(xs))
    return fig
