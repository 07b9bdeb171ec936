"""The 4 · Retrieve & generate tab of the RAG page: the retrieval and answer knobs, the answers streamed with and
without retrieval, then drawn with linked citations and RAG-triad scores, and the retrieved chunks with the embedding
map."""
from __future__ import annotations

import functools
import re

import pandas as pd
import streamlit as st

import ui
from labs.core import settings
from labs.rag import charts as rag_charts
from labs.rag import evaluate, generate, retrieve, store
from ui.rag.shared import embedder


P = "rag"


def retrieval_knobs() -> tuple[dict, float]:
    """The search widgets as RetrieveConfig's fields (k, method, fetch_k, mmr_lambda, fusion, bm25_weight, rewrite, rerank,
    compress_to) and the relevance threshold."""
    c1, c2, c3, c4 = st.columns(4)
    k = c1.slider("k (chunks)", 1, 10, 4, key=f"{P}_k", help="How many chunks are retrieved.")
    compress_to = c1.slider("Sentences for the model (0 = whole chunks)", 0, 10, retrieve.RetrieveConfig.compress_to,
                            key=f"{P}_compress", help="Contextual compression: of the k chunks, the model reads only "
                            "the sentences most similar to the question. A small model copies an answer from 3 "
                            "relevant sentences far more often than it finds it in 4 long chunks.")
    rmethod = c2.radio("Search", list(retrieve.METHODS), key=f"{P}_search",
                       format_func=lambda m: {"dense": "dense top-k", "mmr": "MMR (diverse)",
                                              "hybrid": "hybrid BM25 + dense"}[m],
                       help="Dense: nearest vectors. MMR: trade relevance for diversity. Hybrid: fuse keyword (BM25) "
                            "and vector rankings with reciprocal rank fusion.")
    fetch_k = c2.slider("Candidates (fetch_k)", 5, 50, 10, 5, key=f"{P}_fetch_k",
                        disabled=rmethod == "dense" and not st.session_state.get(f"{P}_rerank"),
                        help="How many nearest chunks MMR, hybrid fusion and re-ranking choose the k from.")
    lam = c3.slider("MMR λ", 0.0, 1.0, 0.5, 0.05, key=f"{P}_lambda", disabled=rmethod != "mmr",
                    help="1 = pure relevance (same as dense), 0 = pure diversity.")
    fusion = c3.radio("Fusion", list(retrieve.FUSIONS), key=f"{P}_fusion", disabled=rmethod != "hybrid",
                      format_func={"rrf": "RRF (no weight)", "weighted": "weighted"}.get, horizontal=True,
                      help="RRF adds 1/(60 + rank) from each ranking: nothing to tune (Cormack et al. 2009). "
                           "Weighted gives BM25 the share below and dense the rest.")
    w_bm25 = c3.slider("BM25 weight", 0.0, 1.0, 0.5, 0.05, key=f"{P}_bm25",
                       disabled=rmethod != "hybrid" or fusion != "weighted",
                       help="Share of the keyword ranking in the weighted fusion.")
    hyde = c4.checkbox("HyDE rewrite", key=f"{P}_hyde",
                       help="The model first writes a hypothetical answer; we search with the mean of its embedding "
                            "and the question's (Gao et al. 2022). Costs one extra generation.")
    rerank = c4.checkbox("Re-rank with the LLM", key=f"{P}_rerank",
                         help="The model reads the question with each candidate chunk (like a cross-encoder) and "
                              "scores log p(Yes) − log p(No); the best k are kept. One forward pass per candidate.")
    threshold = c4.slider("Relevance threshold", 0.0, 1.0, retrieve.RetrieveConfig.min_similarity, 0.05,
                          key=f"{P}_threshold",
                          help="If the best chunk's cosine similarity is below this, the answer is \"I don't know\" "
                               "and the model is not asked.")
    return dict(k=k, method=rmethod, fetch_k=max(fetch_k, k), mmr_lambda=lam, fusion=fusion, bm25_weight=w_bm25,
                rewrite="hyde" if hyde else "none", rerank="llm" if rerank else "none",
                compress_to=int(compress_to)), threshold


def answer_knobs() -> tuple[int, bool, float]:
    """Answer length, whether to also answer without retrieval, temperature."""
    g1, g2, g3 = st.columns(3)
    top = settings.new_tokens_slider_max(256)
    max_tokens = g1.slider("Answer length (tokens)", 16, top, min(64, top), 16, key=f"{P}_max_tokens",
                           help="Longer answers take longer: decoding writes one token at a time."
                                + (f" This server caps answers at {top} tokens." if top < 256 else ""))
    compare = g2.checkbox("Also answer without retrieval", value=True, key=f"{P}_compare",
                          help="The same model and question with no context, side by side.")
    temperature = g3.slider("Temperature", 0.0, 1.5, 0.0, 0.1, key=f"{P}_temperature",
                            help="0 = always the most likely token (reproducible).")
    return max_tokens, compare, temperature


def stream_answers(lm, result: retrieve.Retrieval, question: str, gconfig, threshold: float, compare: bool) -> dict:
    """Stream the answer with retrieval (and without, when compare) side by side; the texts by name."""
    answers = {}
    cols = st.columns(2 if compare else 1)
    with cols[0]:
        st.markdown("**With retrieval**")
        answer = st.write_stream(generate.stream_answer(lm, result, gconfig, threshold))
    answers["rag"] = answer if isinstance(answer, str) else "".join(map(str, answer))
    if compare:
        with cols[1]:
            st.markdown("**Without retrieval**")
            plain = st.write_stream(generate.stream_plain(lm, question, gconfig))
        answers["plain"] = plain if isinstance(plain, str) else "".join(map(str, plain))
    answers["threshold"] = threshold
    return answers


def linked(answer: str, k: int) -> str:
    """[n] in the answer becomes a link to the chunk's anchor below (only for n in 1..k)."""
    def link(m):
        nums = [int(n) for n in re.findall(r"\d+", m.group(1))]
        if not all(1 <= n <= k for n in nums):
            return m.group(0)
        return "".join(f"[\\[{n}\\]](#rag-chunk-{n})" for n in nums)

    return re.sub(r"\[(\d+(?:\s*,\s*\d+)*)\]", link, answer)


def _triad(result: retrieve.Retrieval, answer: str, contexts: list[str], embed, index: store.Index) -> dict:
    """The RAG triad of one answer, computed once per (question, answer, chunks) in this session, not on every
    rerun of the page (it embeds the answer's sentences)."""
    cache = st.session_state.setdefault(f"{P}_triads", {})
    key = (result.question, answer, tuple(h.chunk.index for h in result.hits))
    if key not in cache:
        if len(cache) > 8:
            cache.clear()
        cache[key] = evaluate.triad(result.question, answer, contexts, embed,
                                    context_vecs=index.embeddings[[h.chunk.index for h in result.hits]])
    return cache[key]


def where(chunk) -> str:
    """A chunk's place for citations: its source and, in Markdown, its heading path."""
    return f"{chunk.source} › {chunk.heading}" if chunk.heading else chunk.source


def answers_with_scores(result: retrieve.Retrieval, answers: dict, index: store.Index) -> None:
    """Both answers side by side: citations linked to the chunks, and the RAG triad of each."""
    embed = functools.partial(store.embed_texts, embedder())
    contexts = [h.chunk.text for h in result.hits]
    cols = st.columns(2 if "plain" in answers else 1)
    for col, (name, title) in zip(cols, [("rag", "With retrieval"), ("plain", "Without retrieval")]):
        if name not in answers:
            continue
        with col:
            st.markdown(f"**{title}**")
            if not answers[name].strip():
                st.caption("(the model returned an empty answer)")
            st.markdown(linked(answers[name], len(result.hits)) if name == "rag" else answers[name])
            if name == "rag":
                cited = generate.citations(answers[name], len(result.hits))
                st.caption("Cites " + ", ".join(f"[{n}] {where(result.hits[n - 1].chunk)}" for n in cited)
                           if cited else "No chunk cited.")
            if answers[name].strip() and not answers[name].startswith("I don't know:"):
                t = _triad(result, answers[name], contexts, embed, index)
                m = st.columns(3)
                m[0].metric("Context relevance", f"{t['context_relevance']:.2f}")
                m[1].metric("Groundedness", f"{t['groundedness']:.2f}")
                m[2].metric("Answer relevance", f"{t['answer_relevance']:.2f}")
    st.caption("Triad scores are cosine similarities of all-MiniLM-L6-v2 embeddings (not an LLM judge): they "
               "measure topical closeness, not truth. See **5 · Evaluate** for their noise level.")
    if result.hypothetical:
        with st.expander("HyDE: the hypothetical passage that was embedded"):
            st.text(result.hypothetical)


def retrieved_chunks(result: retrieve.Retrieval, answers: dict, index: store.Index) -> None:
    """The retrieved chunks as a table (every distance and score), each chunk's text, and the embedding map."""
    timing = " · ".join(f"{k.removesuffix('_ms')} {v:.0f} ms" for k, v in result.timings_ms.items())
    st.markdown(f"**Retrieved chunks** · {timing}")
    formula = store.distance(index.distance, result.query_vec, index.embeddings[[h.chunk.index for h in result.hits]])
    table = pd.DataFrame([{"#": h.rank, "source": h.chunk.source, "section": h.chunk.heading,
                           "dense rank": h.dense_rank, "BM25 rank": h.bm25_rank, "method score": h.score,
                           "chunk": h.chunk.position + 1, "characters": f"{h.chunk.start}–{h.chunk.end}",
                           "cosine similarity": h.similarity, f"Chroma {index.distance} distance": h.distance,
                           "formula (numpy)": float(f), "BM25": h.bm25} for h, f in zip(result.hits, formula)])
    if not any(h.chunk.heading for h in result.hits):
        table = table.drop(columns="section")
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in table.columns if table[c].dtype.kind == "f"})
    cited = generate.citations(answers.get("rag", ""), len(result.hits))
    if any(p.similarity is not None for p in result.passages):
        st.markdown("**What the model read** (contextual compression: the sentences of these chunks most similar "
                    "to the question)")
        st.dataframe(pd.DataFrame([{"#": p.rank, "sentence": p.text, "cosine similarity": p.similarity}
                                   for p in result.passages]), hide_index=True, width="stretch")
    for h in result.hits:
        st.markdown(f'<a id="rag-chunk-{h.rank}"></a>', unsafe_allow_html=True)
        with st.expander(f"[{h.rank}] {where(h.chunk)} · chunk {h.chunk.position + 1} · "
                         f"similarity {h.similarity:.3f}" + (" · cited" if h.rank in cited else ""),
                         expanded=h.rank in cited):
            st.text(h.chunk.text)  # plain text: uploaded markup is never rendered
    with ui.friendly_errors("The map"):
        st.plotly_chart(rag_charts.embedding_map(index.embeddings, index.chunks, result.query_vec,
                                                 [h.chunk.index for h in result.hits]), key=f"{P}_map")
