"""The 3 · Embed & store tab of the RAG page: the embedding-model and distance pickers, the collection name for the
current settings, and the summary of the stored index."""
from __future__ import annotations

import streamlit as st

import ui
from labs import models
from labs.core import settings
from labs.rag import split, store
from ui.rag.shared import embedder_key


P = "rag"


def index_key(corpus: str, config: split.SplitConfig, distance: str) -> str:
    return store.collection_name(store.corpus_for(corpus, embedder_key()), config, distance)


def embedder_picker() -> None:
    embedders = [s.key for s in models.embedding_models()]
    if st.session_state.get(f"{P}_embedder") not in embedders:
        st.session_state.pop(f"{P}_embedder", None)
    key = st.selectbox("Embedding model", embedders, key=f"{P}_embedder", format_func=ui.display_name,
                       help="all-MiniLM-L6-v2 (384 dimensions) and all-mpnet-base-v2 (768) are packaged; embedding "
                            "models from your models file (kind = \"embedding\") are listed too. Each model gets "
                            "its own collection.")
    s = models.spec(key)
    state = models.cache_state(key)
    st.caption(f"**{s.display_name}**" + (f" · {s.params} parameters" if s.params else "") + f" · {s.notes}"
               + (" First use assembles it from its part packages (once, a few seconds)." if state == "missing"
                  else f" Not installed: `{s.install}`." if state == "not installed" else ""))


def distance_picker() -> str:
    c1, c2 = st.columns([1, 2])
    distance = c1.radio("Distance", list(store.DISTANCES), key=f"{P}_distance",
                        format_func=lambda d: {"cosine": "cosine", "l2": "l2 (squared Euclidean)",
                                               "ip": "ip (inner product)"}[d],
                        help="How Chroma measures closeness (smaller distance = closer). The collection is built "
                             "for one distance; changing it makes a new collection.")
    with c2:
        st.latex(store.DISTANCE_LATEX[distance])
        st.caption("all-MiniLM-L6-v2 vectors have length 1, so here l2 = 2 × cosine distance and ip = cosine "
                   "distance: the ranking is the same, only the numbers differ. They differ for unnormalised vectors.")
    return distance


def index_summary(index: store.Index) -> None:
    m = st.columns(4)
    m[0].metric("Chunks stored", len(index))
    if index.reused:
        m[1].metric("Embedding", "reused")
    else:
        m[1].metric("Embedding time", f"{index.embed_seconds:.1f} s")
        m[2].metric("Ingest speed", f"{index.chunks_per_second:.0f} chunks/s")
    m[3].metric("Vector size", index.embeddings.shape[1])
    st.caption(f"Collection `{index.name}` ({index.distance}) in "
               f"{'the Chroma server at ' if settings.chroma_url() else ''}`{store.where()}`.")
