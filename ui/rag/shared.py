"""The embedding model picked in the 3 · Embed & store tab of the RAG page, read by every tab that embeds: splitting
by tokens, the index, retrieval, the triad and the evaluations."""
from __future__ import annotations

import streamlit as st

import ui
from labs import models


P = "rag"


def embedder_key() -> str:
    """The embedding model picked in 3 · Embed & store (all-MiniLM-L6-v2 unless the models file adds others)."""
    key = st.session_state.get(f"{P}_embedder", models.EMBEDDING_MODEL)
    return key if key in {s.key for s in models.embedding_models()} else models.EMBEDDING_MODEL


def embedder():
    return ui.cached_embedder(embedder_key())
