"""Figures for the RAG page (data in, Plotly figure out): chunk lengths, the 2-D embedding map, the leaderboard."""
from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from labs.core.charts import PALETTE, _layout
from labs.rag.split import Chunk, coverage_segments


CHUNK_COLOURS = ("#dbe9f6", "#e3f1d9")  # alternate chunks: light blue, light green
OVERLAP_COLOUR = "#ffd58a"  # text that belongs to two chunks


def length_histogram(chunks: Sequence[Chunk], chunk_size: int, unit: str) -> go.Figure:
    """Histogram of chunk lengths (in `unit`) with the chunk size marked."""
    fig = go.Figure(go.Histogram(x=[c.length for c in chunks], nbinsx=40, marker_color=PALETTE[0]))
    fig.add_vline(x=chunk_size, line_dash="dash", annotation_text="chunk size")
    return _layout(fig, f"Chunk lengths ({len(chunks)} chunks)", unit, "chunks", height=300)


def chunk_viewer_html(text: str, chunks: Sequence[Chunk], limit: int = 6000) -> str:
    """The document with each chunk shaded and overlaps highlighted. All document text is escaped: an uploaded
    page's markup is shown as text, never rendered or run."""
    shown = [c for c in chunks if c.start < limit]
    parts = []
    for a, b, covering in coverage_segments(shown, min(len(text), limit)):
        piece = html.escape(text[a:b])
        if len(covering) > 1:
            style, tip = f"background:{OVERLAP_COLOUR}", "overlap of chunks " + ", ".join(str(p + 1) for p in covering)
        elif covering:
            style, tip = f"background:{CHUNK_COLOURS[covering[0] % 2]}", f"chunk {covering[0] + 1}"
        else:
            style, tip = "background:#f4c7c3", "not in any chunk"
        starts = [c for c in shown if c.start == a]
        marker = "".join(f'<sup style="color:#555;font-weight:600">[{c.position + 1}]</sup>' for c in starts)
        parts.append(f'{marker}<span style="{style}" title="{tip}">{piece}</span>')
    more = f"<p><i>… {len(text) - limit:,} more characters not shown</i></p>" if len(text) > limit else ""
    return ('<div style="white-space:pre-wrap;font-family:monospace;font-size:0.8rem;line-height:1.5;'
            'max-height:420px;overflow-y:auto;border:1px solid #ddd;padding:8px;border-radius:6px">'
            + "".join(parts) + "</div>" + more)


def embedding_map(embeddings: np.ndarray, chunks: Sequence[Chunk], query_vec: np.ndarray | None = None,
                  hit_indices: Sequence[int] = (), max_points: int = 4000, seed: int = 0) -> go.Figure:
    """PCA of the chunk embeddings to 2-D (fit on the chunks), coloured by source; query star, hits ringed."""
    from sklearn.decomposition import PCA  # optional dependency: only the embedding map uses it

    n = len(chunks)
    keep = np.arange(n)
    if n > max_points:  # a readable, fast map: a random sample plus every hit
        rng = np.random.default_rng(seed)
        keep = np.union1d(rng.choice(n, max_points, replace=False), np.asarray(hit_indices, dtype=int))
    pca = PCA(n_components=2, random_state=seed).fit(embeddings[keep])
    xy = pca.transform(embeddings[keep])
    fig = go.Figure()
    sources = [chunks[i].source.split("#")[0] for i in keep]
    for j, source in enumerate(sorted(set(sources))):
        mask = np.array([s == source for s in sources])
        fig.add_scatter(x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=source,
                        marker=dict(size=6, color=PALETTE[j % len(PALETTE)], opacity=0.55),
                        text=[f"{chunks[i].source} · chunk {chunks[i].position + 1}<br>"
                              f"{html.escape(chunks[i].text[:80])}…" for i in keep[mask]], hoverinfo="text")
    if len(hit_indices):
        hxy = pca.transform(embeddings[list(hit_indices)])
        fig.add_scatter(x=hxy[:, 0], y=hxy[:, 1], mode="markers+text", name="retrieved",
                        text=[f"[{r + 1}]" for r in range(len(hit_indices))], textposition="top center",
                        marker=dict(size=14, color="rgba(0,0,0,0)", line=dict(color="black", width=2)))
    if query_vec is not None:
        q = pca.transform(np.asarray(query_vec, dtype=np.float32)[None])[0]
        fig.add_scatter(x=[q[0]], y=[q[1]], mode="markers", name="query",
                        marker=dict(size=18, symbol="star", color="#E45756", line=dict(color="black", width=1)))
    ratio = pca.explained_variance_ratio_
    _layout(fig, f"Chunk embeddings, PCA to 2-D ({ratio.sum():.0%} of the variance shown)",
            f"PC1 ({ratio[0]:.0%})", f"PC2 ({ratio[1]:.0%})", height=520)
    fig.update_layout(legend=dict(orientation="v", x=1.02, y=1, xanchor="left", yanchor="top"))
    return fig


def leaderboard_bars(rows: Sequence[dict]) -> go.Figure:
    """hit@k and the triad per configuration (grouped bars)."""
    labels = [f"{r['run'][-6:]} · {r['config']}" for r in rows]
    fig = go.Figure()
    for j, key in enumerate(("hit@k", "MRR", "context relevance", "groundedness", "answer relevance")):
        fig.add_bar(x=labels, y=[r.get(key) for r in rows], name=key, marker_color=PALETTE[j])
    _layout(fig, "Configurations on the bundled question set", "", "score (0-1)", height=420)
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.25, x=0, xanchor="left", yanchor="top"))
    return fig
