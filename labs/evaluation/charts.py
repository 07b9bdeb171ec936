"""Charts of the evaluation lab (plain data in, Plotly figure out): accuracy per subject, which answer the model
picked, diversity against temperature."""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from labs.core.charts import PALETTE, _layout, curves


# ---------------------------------------------------------------------------------------------------------------
# Charts (plain data in, Plotly figure out)
# ---------------------------------------------------------------------------------------------------------------
def subject_chart(runs: dict[str, dict], metric: str = "acc"):
    """Grouped bars: per-subject accuracy of each run, ±1 standard error, and the random-guess line."""
    fig = go.Figure()
    random_rate = None
    for i, (label, summary) in enumerate(runs.items()):
        subjects = list(summary["subjects"]) + ["ALL"]
        blocks = list(summary["subjects"].values()) + [summary["overall"]]
        errs = [b[f"{metric}_stderr"] if b[f"{metric}_stderr"] == b[f"{metric}_stderr"] else 0 for b in blocks]
        fig.add_bar(x=[s.replace("_", " ") for s in subjects], y=[b[metric] for b in blocks], name=label,
                    error_y=dict(type="data", array=errs), marker_color=PALETTE[i % len(PALETTE)])
        random_rate = summary["overall"]["random"]
    if random_rate is not None:
        fig.add_hline(y=random_rate, line_dash="dash", annotation_text=f"random guessing ({random_rate:.0%})")
    fig.update_layout(barmode="group", yaxis_range=[0, 1], showlegend=True)
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, f"{metric} per subject (±1 standard error)", "", metric, height=420)


def answer_chart(dist: dict):
    """Grouped bars: share of each answer position among the model's picks and among the right answers, and the
    chance line (1 / number of choices)."""
    fig = go.Figure()
    fig.add_bar(x=dist["labels"], y=dist["predicted"], name="model's picks", marker_color=PALETTE[0],
                text=[f"{v:.0%}" for v in dist["predicted"]], textposition="auto")
    fig.add_bar(x=dist["labels"], y=dist["gold"], name="right answers", marker_color=PALETTE[1],
                text=[f"{v:.0%}" for v in dist["gold"]], textposition="auto")
    fig.add_hline(y=dist["chance"], line_dash="dash", annotation_text=f"chance ({dist['chance']:.0%})")
    fig.update_layout(barmode="group", yaxis_range=[0, 1], showlegend=True)
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, f"Which answer did the model pick? ({dist['n']} items)", "answer position", "share of items",
                   height=340)


def diversity_chart(table: Sequence[dict]):
    """Diversity scores (0–1) against sampling temperature, one line per metric."""
    temps = [r["temperature"] for r in table]
    keys = [k for k in ("distinct_1", "distinct_2", "self_similarity", "self_overlap") if k in table[0]]
    return curves({k: (temps, [r[k] for r in table]) for k in keys}, title="Diversity vs temperature",
                  x="temperature", y="score (0..1)")
