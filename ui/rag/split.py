"""The 2 · Split tab of the RAG page: the splitter knobs, splitting the corpus (cached), and the chunk statistics with
the length histogram and the chunk viewer."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from labs.rag import charts as rag_charts
from labs.rag import load, split
from ui.rag.shared import embedder


P = "rag"

SEPARATORS = list(split.SEPARATOR_NAMES)  # coarsest first; the order matters to the recursive splitter


def split_knobs() -> tuple[dict, tuple[str, ...]]:
    """The splitter widgets as RagEvalConfig's fields (splitter, chunk_size, chunk_overlap, unit) and the
    separators the recursive splitter tries."""
    c1, c2, c3, c4 = st.columns(4)
    method = c1.radio("Splitter", list(split.METHODS), key=f"{P}_method",
                      help="Recursive: cut at blank lines, then lines, then sentence ends, spaces, characters. "
                           "Sentence: pack whole sentences into chunks. Markdown: cut at headings first (each "
                           "chunk keeps its heading path, e.g. 'Chat UI > Streaming'), code blocks whole where they "
                           "fit, then recursively.")
    unit = c2.radio("Measure in", ["chars", "tokens"], key=f"{P}_unit",
                    help="Tokens are the embedding model's word pieces: it reads at most 256 and cuts off the rest.")
    size = c3.number_input("Chunk size", min_value=8, max_value=20_000, value=500 if unit == "chars" else 128,
                           step=50 if unit == "chars" else 16, key=f"{P}_chunk_size_{unit}",
                           help="Maximum chunk length. Small chunks are precise but lose context; large ones dilute "
                                "the embedding. 500 characters ≈ 110 tokens.")
    overlap = c4.number_input("Overlap", min_value=0, max_value=10_000, value=50 if unit == "chars" else 16,
                              step=10 if unit == "chars" else 4, key=f"{P}_overlap_{unit}",
                              help="How much of the end of one chunk is repeated at the start of the next, so a fact "
                                   "cut at a boundary still appears whole once.")
    separators = tuple(SEPARATORS)
    if method != "sentence":
        chosen = st.multiselect("Separators (coarsest first)", SEPARATORS, default=SEPARATORS, key=f"{P}_separators",
                                format_func=lambda s: split.SEPARATOR_NAMES[s],
                                help="Tried in this order. Without 'between characters', a word longer than a "
                                     "chunk stays whole.")
        separators = tuple(s for s in SEPARATORS if s in chosen)
    return dict(splitter=method, chunk_size=int(size), chunk_overlap=int(overlap), unit=unit), separators


@st.cache_data(show_spinner="Splitting…", max_entries=16)
def split_corpus(corpus_id: str, _docs: tuple[load.Document, ...], config: split.SplitConfig) -> list[split.Chunk]:
    length = split.token_length(embedder().tokenizer) if config.unit == "tokens" else split.char_length
    return split.split_documents(list(_docs), config, length)


def chunk_stats(docs: list[load.Document], chunks: list[split.Chunk], config: split.SplitConfig) -> None:
    """Chunk count and lengths, the length histogram, and the chunk viewer of one document."""
    unit = config.unit
    lengths = np.array([c.length for c in chunks])
    shared = sum(split.overlap_len(a, b) for a, b in zip(chunks, chunks[1:]))
    m = st.columns(4)
    m[0].metric("Chunks", len(chunks))
    m[1].metric(f"Mean length ({unit})", f"{lengths.mean():.0f}")
    m[2].metric(f"Longest ({unit})", int(lengths.max()))
    m[3].metric("Characters in overlaps", f"{shared:,}")
    st.plotly_chart(rag_charts.length_histogram(chunks, config.chunk_size, unit), key=f"{P}_hist")
    view = st.selectbox("Chunk viewer: document", [d.source for d in docs], key=f"{P}_view_doc",
                        help="Each chunk is shaded (alternating blue/green), overlaps are orange, [n] marks "
                             "where chunk n starts.")
    doc = next((d for d in docs if d.source == view), docs[0])
    # st.html: no markdown pass over the text; the document text is html-escaped inside chunk_viewer_html
    mine = [c for c in chunks if c.source == doc.source]
    st.html(rag_charts.chunk_viewer_html(doc.text, mine))
    if any(c.heading for c in mine):
        st.caption("Each chunk's heading path: embedded and keyword-searched with its text, and named in citations.")
        st.dataframe(pd.DataFrame([{"chunk": c.position + 1, "heading path": c.heading, f"length ({unit})": c.length}
                                   for c in mine]), hide_index=True, width="stretch")
