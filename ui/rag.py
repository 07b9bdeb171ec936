"""Widgets and drawing for the RAG page: corpus pickers, the chunk statistics, the retrieval knobs, the answers with
their citations and triad scores, the evaluation summary and leaderboard, and the RAG-vs-no-RAG comparison.

The lesson lives in labs/rag/ (load, split, store, retrieve, generate, evaluate); these helpers only collect widgets
and draw what the labs return.
"""
from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd
import streamlit as st

import ui
from labs.core import charts
from labs.runs import jobs
from labs import models
from labs.runs import results
from labs.core import settings
from labs.arena import votes
from labs.rag import charts as rag_charts
from labs.rag import evaluate, generate, load, retrieve, split, store
from ui.lessons import claim_box, pending

P = "rag"
SEPARATORS = list(split.SEPARATOR_NAMES)  # coarsest first; the order matters to the recursive splitter


# -- shared: the embedder picked in 3 · Embed & store ----------------------------------------------------------------
def embedder_key() -> str:
    """The embedding model picked in 3 · Embed & store (all-MiniLM-L6-v2 unless the models file adds others)."""
    key = st.session_state.get(f"{P}_embedder", models.EMBEDDING_MODEL)
    return key if key in {s.key for s in models.embedding_models()} else models.EMBEDDING_MODEL


def embedder():
    return ui.cached_embedder(embedder_key())


def index_key(corpus: str, config: split.SplitConfig, distance: str) -> str:
    return store.collection_name(store.corpus_for(corpus, embedder_key()), config, distance)


# -- 1 · load ---------------------------------------------------------------------------------------------------------
def url_loading() -> tuple[bool, str]:
    """Whether this server may fetch URLs now: LLMLAB_URL_LOADING and the instructor's class-wide switch."""
    if not settings.url_loading():
        return False, ("URL loading is turned off on this server (LLMLAB_URL_LOADING=off). Download the page in "
                       "your browser and use **Upload files** instead.")
    try:
        on = votes.open_store().url_loading()
    except Exception:  # noqa: BLE001 - the class settings live in the vote store; unreadable = stay safe
        return False, ("URL loading is unavailable: the class settings could not be read (check LLMLAB_DB_URL). "
                       "Use **Upload files** instead.")
    if not on:
        return False, ("The instructor has turned URL loading off for the class. Download the page in your "
                       "browser and use **Upload files** instead.")
    return True, ""


@st.cache_data(show_spinner=False, max_entries=64)
def _read_upload(name: str, data: bytes) -> list[load.Document]:
    return load.load_file(name, data)


def uploaded_docs() -> list[load.Document]:
    """The uploader and the documents read from it; a file that cannot be read is an error line, not a stop."""
    files = st.file_uploader("Documents", accept_multiple_files=True, key=f"{P}_files",
                             type=[k.lstrip(".") for k in load.KINDS],
                             help=f"Up to {load.MAX_UPLOAD_BYTES // 2**20} MB per file. Scripts in HTML are "
                                  "removed, never run; encrypted PDFs are refused.")
    docs: list[load.Document] = []
    for f in files or []:
        try:
            got = _read_upload(f.name, f.getvalue())
        except load.LoadError as exc:
            st.error(str(exc))
            continue
        docs.extend(got)
        for d in got:
            if d.note:
                st.warning(d.note)
    return docs


def url_docs() -> list[load.Document]:
    """The URL box and Fetch button (when this server and the instructor allow it); the fetched documents."""
    url_ok, url_off_reason = url_loading()
    if not url_ok:
        st.info(url_off_reason)
    c1, c2 = st.columns([4, 1])
    url = c1.text_input("URL", key=f"{P}_url", placeholder="https://docs.python.org/3/library/json.html",
                        disabled=not url_ok,
                        help="A public web page or PDF, fetched once if this machine can reach the internet. "
                             "Addresses inside the server's own network (localhost, 10.x, 192.168.x, ...) are "
                             "refused.")
    if c2.button("Fetch", key=f"{P}_fetch", help="Download the page and keep its visible text", disabled=not url_ok):
        try:
            st.session_state[f"{P}_url_docs"] = load.fetch_url(url, allowed=url_loading()[0])
        except load.LoadError as exc:
            st.error(str(exc))
    return list(st.session_state[f"{P}_url_docs"])


def corpus_summary(docs: list[load.Document]) -> str:
    """Draw what was loaded; returns the corpus id ('' when nothing is loaded)."""
    if not docs:
        st.info("No documents yet: pick modules, upload files, or fetch a URL.")
        return ""
    corpus = load.corpus_id(docs)
    st.success(f"{len(docs)} document(s), {sum(len(d.text) for d in docs):,} characters · corpus id `{corpus}`")
    st.dataframe(pd.DataFrame([{"source": d.source, "kind": d.kind, "characters": len(d.text),
                                "starts with": d.text[:90].replace("\n", " ")} for d in docs]),
                 hide_index=True, width="stretch", height=min(38 * len(docs) + 40, 300))
    return corpus


# -- 2 · split --------------------------------------------------------------------------------------------------------
def split_knobs() -> tuple[dict, tuple[str, ...]]:
    """The splitter widgets as RagEvalConfig's fields (splitter, chunk_size, chunk_overlap, unit) and the
    separators the recursive splitter tries."""
    c1, c2, c3, c4 = st.columns(4)
    method = c1.radio("Splitter", ["recursive", "sentence"], key=f"{P}_method",
                      help="Recursive: cut at blank lines, then lines, then sentence ends, spaces, characters. "
                           "Sentence: pack whole sentences into chunks.")
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
    if method == "recursive":
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
    st.html(rag_charts.chunk_viewer_html(doc.text, [c for c in chunks if c.source == doc.source]))


# -- 3 · embed & store ------------------------------------------------------------------------------------------------
def embedder_picker() -> None:
    embedders = [s.key for s in models.embedding_models()]
    if st.session_state.get(f"{P}_embedder") not in embedders:
        st.session_state.pop(f"{P}_embedder", None)
    st.selectbox("Embedding model", embedders, key=f"{P}_embedder", format_func=ui.display_name,
                 help="all-MiniLM-L6-v2 (384 dimensions) is packaged; embedding models from your models file "
                      "(kind = \"embedding\") are listed too. Each model gets its own collection.")


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


# -- 4 · retrieve & generate ------------------------------------------------------------------------------------------
def retrieval_knobs() -> tuple[dict, float]:
    """The search widgets as RetrieveConfig's fields (k, method, fetch_k, mmr_lambda, bm25_weight, rewrite, rerank,
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
    w_bm25 = c3.slider("BM25 weight", 0.0, 1.0, 0.5, 0.05, key=f"{P}_bm25", disabled=rmethod != "hybrid",
                       help="Share of the keyword ranking in the fused score.")
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
    return dict(k=k, method=rmethod, fetch_k=max(fetch_k, k), mmr_lambda=lam, bm25_weight=w_bm25,
                rewrite="hyde" if hyde else "none", rerank="llm" if rerank else "none",
                compress_to=int(compress_to)), threshold


def answer_knobs() -> tuple[int, bool, float]:
    """Answer length, whether to also answer without retrieval, temperature."""
    g1, g2, g3 = st.columns(3)
    top = settings.new_tokens_slider_max(256)
    max_tokens = g1.slider("Answer length (tokens)", 16, top, min(64, top), 16, key=f"{P}_max_tokens",
                           help="~10 tokens/s on a 2-core CPU for the 135M model."
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
                st.caption("Cites " + ", ".join(f"[{n}] {result.hits[n - 1].chunk.source}" for n in cited)
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
    table = pd.DataFrame([{"#": h.rank, "source": h.chunk.source, "chunk": h.chunk.position + 1,
                           "characters": f"{h.chunk.start}–{h.chunk.end}", "cosine similarity": h.similarity,
                           f"Chroma {index.distance} distance": h.distance, "formula (numpy)": float(f),
                           "BM25": h.bm25, "method score": h.score} for h, f in zip(result.hits, formula)])
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
        with st.expander(f"[{h.rank}] {h.chunk.source} · chunk {h.chunk.position + 1} · "
                         f"similarity {h.similarity:.3f}" + (" · cited" if h.rank in cited else ""),
                         expanded=h.rank in cited):
            st.text(h.chunk.text)  # plain text: uploaded markup is never rendered
    with ui.friendly_errors("The map"):
        st.plotly_chart(rag_charts.embedding_map(index.embeddings, index.chunks, result.query_vec,
                                                 [h.chunk.index for h in result.hits]), key=f"{P}_map")


# -- 5 · evaluate -----------------------------------------------------------------------------------------------------
def eval_summary(run: jobs.Run) -> None:
    """hit@k, MRR and the triad with bootstrap intervals, the noise floor and latency, the per-question table."""
    s = run.summary
    m = st.columns(5)
    m[0].metric(f"hit@{run.config['k']}", f"{s['hit_at_k']:.2f}")
    m[1].metric("MRR", f"{s['mrr']:.2f}")
    for col, key_ in zip(m[2:], ("context_relevance", "groundedness", "answer_relevance")):
        lo, hi = s.get(f"{key_}_ci", (float("nan"), float("nan")))
        value = s[key_]
        col.metric(key_.replace("_", " ").capitalize(), f"{value:.2f}" if value == value else "–",
                   help=f"95 % bootstrap interval over questions: {lo:.2f}–{hi:.2f}" if value == value
                   else "Needs answers: tick 'Generate answers'.")
    st.caption(f"Noise floor: the questions score {s['noise_floor']:.2f} cosine against *random* chunks. "
               "Triad differences between configurations smaller than their bootstrap intervals are noise. "
               f"Search p50 {s['search_ms_p50']:.1f} ms, p95 {s['search_ms_p95']:.1f} ms"
               + (f", generation p50 {s['generate_ms_p50']:.0f} ms." if s.get("generate_ms_p50") == s.get(
                   "generate_ms_p50") else "."))
    eval_result = results.load_result(run)
    if eval_result is not None and eval_result.questions:
        st.dataframe(pd.DataFrame(eval_result.questions), hide_index=True, width="stretch", key=f"{P}_eval_table")


def leaderboard() -> None:
    """Every evaluated configuration, best first, with a chart of the top 8 and a CSV download."""
    rows = evaluate.leaderboard(results.runs(evaluate.RagEvalConfig))
    st.subheader("Leaderboard")
    if not rows:
        st.caption("No evaluated configurations yet.")
        return
    board = pd.DataFrame(rows)
    st.dataframe(board, hide_index=True, width="stretch", key=f"{P}_board",
                 column_config={c: st.column_config.NumberColumn(format="%.3f")
                                for c in board.columns if board[c].dtype.kind == "f"})
    st.plotly_chart(rag_charts.leaderboard_bars(rows[:8]), key=f"{P}_board_chart")
    st.download_button("Leaderboard (CSV)", board.to_csv(index=False), file_name="rag-leaderboard.csv",
                       key=f"{P}_board_csv")


def claim_charts(run: jobs.Run) -> None:
    """C9's figures: hit@k per retrieval mode, RAG vs no-RAG answer scores, and every question's two answers."""
    s = run.summary
    hits = s["hit_at_k"]
    c = st.columns(2)
    c[0].plotly_chart(charts.bars(list(hits), list(hits.values()), title=f"hit@{s['k']} per retrieval mode",
                                  y=f"share of questions with a right chunk in the top {s['k']}",
                                  text=[f"{v:.0%}" for v in hits.values()]), key=f"{P}_claim_hits")
    n = s["n"]
    labels = [f"RAG ({s['compress_to']} sentences): contains" if s.get("compress_to") else "RAG: contains",
              "no-RAG: contains", "RAG: similarity", "no-RAG: similarity"]
    values = [sum(s["rag_contains"]) / n, sum(s["no_rag_contains"]) / n,
              float(np.mean(s["rag_similarity"])), float(np.mean(s["no_rag_similarity"]))]
    if s.get("compress_to") and s.get("whole_chunks_contains"):
        labels.insert(1, "RAG (whole chunks): contains")
        values.insert(1, sum(s["whole_chunks_contains"]) / n)
    c[1].plotly_chart(charts.bars(labels, values, title=f"Answers over {n} questions", y="share / cosine",
                                  text=[f"{v:.2f}" for v in values]), key=f"{P}_claim_scores")
    claim_result = results.load_result(run)
    if claim_result is not None and claim_result.answers:
        with st.expander("Every question, both answers"):
            st.dataframe(pd.DataFrame(claim_result.answers), hide_index=True, width="stretch")


def rag_vs_no_rag(modules: tuple[str, ...], gen_key: str) -> None:
    """C9: every bundled question answered with and without retrieval; hit@k of dense, BM25 and hybrid."""
    st.subheader("Does retrieval help? RAG vs no-RAG on the whole question set")
    d = evaluate.RagClaimConfig()
    st.markdown(f"Each bundled question is answered by the chosen model with the top {d.k} hybrid chunks (BM25 share "
                "of the fusion below; only their sentences closest to the question, and once more with the whole "
                "chunks) and with the question alone, and scored by **contains the "
                "answer** (the reference's key term, e.g. `sort_keys`) and by **similarity to the reference answer** "
                "(MiniLM cosine; a 135M LLM judge is too position-biased to grade — see the Evaluation page, C13). "
                "Retrieval alone is compared across modes: dense, keyword (BM25) and hybrid at several weights.")
    weight = st.select_slider("Hybrid: BM25's share of the fusion", [0.1, 0.2, 0.3, 0.4, 0.5, 0.7],
                              value=d.hybrid_weight, key="rag_claim_weight",
                              help=f"The RAG answers use hybrid retrieval with this weight. {d.hybrid_weight} was the "
                                   "best on the bundled questions (tuned on them, so it flatters hybrid a little).")
    compress_to = st.select_slider("Sentences the model reads (0 = the whole chunks)", [0, 1, 2, 3, 4, 6],
                                   value=d.compress_to, key="rag_claim_compress",
                                   help="Contextual compression, as in Retrieve & generate. With compression on, every "
                                        "question is also answered from the whole chunks, for comparison.")
    available = len(evaluate.questions(modules))
    if st.button("Compare RAG with no-RAG", key="rag_claim_go", disabled=available == 0,
                 help="Runs in the background: retrieval for every mode (seconds), then up to 3 answers per "
                      "question, batched (one to two and a half minutes on 2 cores)."):
        with ui.friendly_errors("RAG vs no-RAG"):
            cfg = evaluate.RagClaimConfig(n_questions=available, hybrid_weight=float(weight), corpus_modules=modules,
                                          compress_to=int(compress_to),
                                          model=gen_key, embedder=embedder_key(),
                                          tiny_model=settings.tiny_models())
            st.session_state.rag_claim_run_id = jobs.submit(
                cfg, functools.partial(evaluate.run_rag_claim, embedder=embedder(),
                                       lm=ui.cached_target(gen_key)), owner=ui.session_id(), label="RAG vs no-RAG")
    run_id = st.session_state.get("rag_claim_run_id")
    if run_id:
        ui.run_panel(run_id, [], prefix="rag_claim")
    run = jobs.get(run_id) if run_id else None
    if pending("C9", run, "press 'Compare RAG with no-RAG'"):
        return
    claim_charts(run)
    claim_box(evaluate.rag_claim_verdict(run.summary),
              note="Retrieval finds a right module for nearly every question; the 135M reader is the weak link. "
                   "Handed four whole chunks it often garbles them, so the page hands it only the sentences most "
                   "similar to the question. Lewis et al. 2020 used a BART-large reader trained for the task. The "
                   "fusion weight and the number of sentences were tuned on these same questions.")
