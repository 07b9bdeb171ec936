"""Retrieval-augmented generation: load, split, embed into Chroma, retrieve (top-k, MMR, hybrid, HyDE), answer with citations, evaluate with the RAG triad."""
from __future__ import annotations

import functools

import streamlit as st

import ui
from labs import models
from labs.core import settings
from labs.rag import docsets, evaluate, generate, load, retrieve, split, store
from labs.runs import jobs
from labs.serving import endpoints as backends
from ui.rag import ask as ask_ui
from ui.rag import evaluate as evaluate_ui
from ui.rag import load as load_ui
from ui.rag import shared as shared_ui
from ui.rag import split as split_ui
from ui.rag import store as store_ui


ICON = "🔎"
PREFIX = "rag"

ui.page_header(
    "RAG playground",
    "A language model only knows what was in its training data. **Retrieval-augmented generation** (Lewis et "
    "al. 2020) looks the answer up first: offline, documents are **loaded**, **split** into chunks, **embedded** "
    "and **stored** in a vector database; at question time the question is embedded too, the nearest chunks are "
    "**retrieved** and put in the prompt, and the model **generates** an answer that cites them. Every stage has "
    "knobs — chunk size and overlap, the distance, k, keyword + vector (hybrid) search, query rewriting — and the "
    "**RAG triad** (context relevance, groundedness, answer relevance) tells you which settings help. The default "
    "corpus is the documentation of the Python standard library installed with this app, with a question set "
    "written for it.",
    ICON,
)
ui.init_state(PREFIX, index=None, url_docs=[], result=None, answers={}, eval_run_id=None, claim_run_id=None)


def load_tab() -> tuple[list[load.Document], str]:
    """1 · Load: the bundled standard-library docs, uploads or a URL; returns the documents and the corpus id."""
    source = st.radio("Corpus", ["Python standard library docs", "Installed library docs", "Upload files",
                                 "Web page (URL)"], horizontal=True, key="rag_source",
                      help="The default corpus is always available offline: docstrings of standard-library modules, "
                           "one document per module. Installed library docs: documentation nobody here wrote, that "
                           "every install has (the retrieval benchmark's corpora). Uploads: PDF, HTML, Markdown, "
                           "text, CSV, JSON/JSONL.")
    if source == "Python standard library docs":
        modules = st.multiselect("Modules", load.DEFAULT_MODULES, default=list(load.DEFAULT_MODULES),
                                 key="rag_modules",
                                 help="Fewer modules embed faster. The bundled question set covers all of these; "
                                      "the evaluation tab always uses the modules chosen here.")
        docs = load.default_corpus(tuple(modules))
        st.caption(f"Docstrings of the Python {load.python_version()} standard library on this machine. "
                   f"Question set: `assets/rag/stdlib_questions.jsonl` ({len(evaluate.questions())} questions, "
                   "written for this corpus).")
    elif source == "Installed library docs":
        name = st.selectbox("Documentation", list(docsets.DOCSETS), format_func=docsets.DOCSETS.get,
                            key="rag_docset", help="Questions with their answer pages for both sets are in "
                                                   "bench/retrieval/questions.json (bench.bench_retrieval).")
        docs = []
        with ui.friendly_errors("Loading the documentation"):
            docs = docsets.load_docset(name)
        st.caption("Markdown guides split best with the **markdown** splitter (headings first) in 2 · Split.")
    elif source == "Upload files":
        docs = load_ui.uploaded_docs()
    else:
        docs = load_ui.url_docs()
    return docs, load_ui.corpus_summary(docs)


def split_tab(docs: list[load.Document], corpus: str):
    """2 · Split: splitter settings -> SplitConfig -> chunks, their lengths and the chunk viewer."""
    knobs, separators = split_ui.split_knobs()
    split_config, chunks = None, []
    with ui.friendly_errors("Splitting"):
        split_config = split.SplitConfig(method=knobs["splitter"], chunk_size=knobs["chunk_size"],
                                         chunk_overlap=knobs["chunk_overlap"], unit=knobs["unit"],
                                         separators=separators)
        if docs:
            chunks = split_ui.split_corpus(corpus, tuple(docs), split_config)
    if chunks:
        split_ui.chunk_stats(docs, chunks, split_config)
    return knobs, split_config, chunks


def store_tab(corpus: str, split_config: split.SplitConfig | None, chunks: list[split.Chunk]) -> str:
    """3 · Embed & store: embed every chunk into the Chroma collection for these settings; returns the distance."""
    store_ui.embedder_picker()
    distance = store_ui.distance_picker()
    batch = st.select_slider("Batch size", [8, 16, 32, 64, 128], value=32, key="rag_batch",
                             help="Chunks embedded per forward pass; larger is faster until memory runs out.")
    key = store_ui.index_key(corpus, split_config, distance) if corpus and split_config else ""
    index: store.Index | None = st.session_state.rag_index
    if index is not None and index.name != key:
        st.info("The corpus or the settings changed since the last build: build again (an existing collection for "
                "these settings is reused at once).")
    if st.button("Embed and store", type="primary", key="rag_build", disabled=not chunks,
                 help="Embed every chunk with all-MiniLM-L6-v2 and add it to the Chroma collection for these settings"):
        with ui.friendly_errors("Embedding"):
            bar = st.progress(0.0, text="Loading the embedding model…")
            embedder = shared_ui.embedder()
            st.session_state.rag_index = store.build_index(
                store.corpus_for(corpus, shared_ui.embedder_key()), chunks, embedder, split_config, distance,
                batch_size=batch, progress=lambda f, m: bar.progress(min(f, 1.0), text=m))
            st.session_state.rag_result = None
            bar.empty()
    if st.session_state.rag_index is not None:
        store_ui.index_summary(st.session_state.rag_index)
    return distance


def ask_tab() -> tuple[dict, str]:
    """4 · Retrieve & generate: knobs -> RetrieveConfig -> retrieve -> stream the answers -> draw them with the
    chunks. Returns the retrieval settings and the answering model for the evaluation tab."""
    index = st.session_state.rag_index
    question = st.text_input("Question", value="How do I make json.dumps output keys in sorted order?",
                             key="rag_question", help="Ask about the loaded documents.")
    retrieval, threshold = ask_ui.retrieval_knobs()
    gen_key = ui.generator_picker("Model that answers", "rag_gen_model",
                                  help="SmolLM2-135M-Instruct is the default. Any local model or endpoint from your "
                                       "models file can answer; re-ranking needs a local model (it reads the "
                                       "model's probabilities of Yes and No).")
    if models.spec(gen_key).is_endpoint and st.session_state.get("rag_rerank"):
        st.info(f"{models.spec(gen_key).display_name} is an endpoint: it can answer and write the HyDE passage, but "
                "LLM re-ranking scores log p(Yes) − log p(No), which only a local model gives. Untick re-ranking "
                "or pick a local model.")
    max_tokens, compare, temperature = ask_ui.answer_knobs()
    ask = st.button("Retrieve and answer", type="primary", key="rag_ask", disabled=index is None,
                    help="Retrieve the chunks, then stream the model's answer")
    if index is None:
        st.info("Build the index in **3 · Embed & store** first.")
    if ask and index is not None:
        with ui.friendly_errors("Retrieval"):
            rconfig = retrieve.RetrieveConfig(**{**retrieval, "k": min(retrieval["k"], len(index))},
                                              min_similarity=threshold)
            gconfig = generate.answer_config(settings.check_new_tokens(max_tokens), temperature)
            lm = ui.cached_target(gen_key)
            rewriter = functools.partial(generate.hyde_passage, lm) if rconfig.rewrite == "hyde" else None
            reranker = functools.partial(generate.llm_relevance, lm) if rconfig.rerank == "llm" else None
            result = retrieve.retrieve(index, question, shared_ui.embedder(), rconfig, rewriter=rewriter,
                                       reranker=reranker)
            st.session_state.rag_result = result
            st.session_state.rag_answers = {}
            st.session_state.rag_answers = ask_ui.stream_answers(lm, result, question, gconfig, threshold, compare)
            st.rerun()  # draw the stored result below with links and scores

    result: retrieve.Retrieval | None = st.session_state.rag_result
    answers = st.session_state.rag_answers
    if result is not None and index is not None and result.hits and result.hits[0].chunk.index < len(index.chunks):
        ask_ui.answers_with_scores(result, answers, index)
        ask_ui.retrieved_chunks(result, answers, index)
    return retrieval, gen_key


def eval_tab(split_knobs: dict, distance: str, retrieval: dict, gen_key: str) -> None:
    """5 · Evaluate: the current settings -> RagEvalConfig -> a background run over the question set -> the
    summary and the leaderboard; then C9, RAG vs no-RAG."""
    st.markdown("Runs the current **split, distance and search settings** over the bundled question set on the "
                "standard-library corpus (the modules picked in *1 · Load*), then adds the configuration to the "
                "leaderboard. Change one setting, run again, compare.")
    modules = tuple(st.session_state.get("rag_modules") or load.DEFAULT_MODULES)
    available = len(evaluate.questions(modules))
    e1, e2, e3 = st.columns(3)
    n_q = e1.number_input("Questions", 1, max(available, 1), min(10, max(available, 1)), key="rag_eval_n",
                          help="The first n bundled questions whose answer is in the chosen modules.")
    gen_answers = e2.checkbox("Generate answers", value=True, key="rag_eval_generate",
                              help="Off: retrieval metrics only (seconds). On: the model answers each question "
                                   "(~2-5 s each on a CPU) so groundedness and answer relevance can be scored.")
    eval_top = settings.new_tokens_slider_max(128)
    eval_tokens = e3.slider("Answer length", 16, eval_top, min(48, eval_top), 16, key="rag_eval_tokens",
                            help="Short answers keep the run quick.")
    if st.button("Evaluate this configuration", type="primary", key="rag_eval_run", disabled=available == 0,
                 help="Runs in the background; the page stays usable"):
        with ui.friendly_errors("Evaluation"):
            cfg = evaluate.RagEvalConfig(
                **split_knobs, distance=distance, **retrieval, generate_answers=gen_answers,
                max_new_tokens=settings.check_new_tokens(eval_tokens), n_questions=int(n_q), corpus_modules=modules,
                tiny_model=settings.tiny_models(), model=gen_key, embedder=shared_ui.embedder_key())
            embedder = shared_ui.embedder()
            needs_lm = gen_answers or cfg.rewrite == "hyde" or cfg.rerank == "llm"
            lm = ui.cached_target(gen_key) if needs_lm else None
            if cfg.rerank == "llm":
                backends.require_local(lm, "used to re-rank (it scores log p(Yes) − log p(No))")
            st.session_state.rag_eval_run_id = jobs.submit(
                cfg, functools.partial(evaluate.run_eval, embedder=embedder, lm=lm), owner=ui.session_id(),
                label="RAG eval")
    run_id = st.session_state.rag_eval_run_id
    if run_id:
        ui.run_panel(run_id, [("Retrieval (per question)", ["hit", "rr"]),
                              ("RAG triad (per question)", ["context_relevance", "groundedness", "answer_relevance"]),
                              ("Latency (ms)", ["search_ms", "rerank_ms", "generate_ms"])], prefix="rag", smoothing=0.0)
        run = jobs.get(run_id)
        if run is not None and run.status == jobs.DONE:
            evaluate_ui.eval_summary(run)
    evaluate_ui.leaderboard()
    evaluate_ui.rag_vs_no_rag(modules, gen_key)


tab_load, tab_split, tab_store, tab_ask, tab_eval = st.tabs(
    ["1 · Load", "2 · Split", "3 · Embed & store", "4 · Retrieve & generate", "5 · Evaluate"])
with tab_load:
    docs, corpus = load_tab()
with tab_split:
    split_knobs, split_config, chunks = split_tab(docs, corpus)
with tab_store:
    distance = store_tab(corpus, split_config, chunks)
with tab_ask:
    retrieval, gen_key = ask_tab()
with tab_eval:
    eval_tab(split_knobs, distance, retrieval, gen_key)

ui.how_it_works(
    r"""
**Split.** Cut at the coarsest separator present, recurse into pieces still too long, then merge pieces greedily
into chunks of at most *chunk size*, starting each chunk with at most *overlap* of the previous one.

**Distances** (Chroma; smaller = closer): $d_{l2} = \sum_i (A_i - B_i)^2$, $d_{ip} = 1 - \sum_i A_i B_i$,
$d_{cos} = 1 - \frac{A\cdot B}{\lVert A\rVert \lVert B\rVert}$. A *dual (bi-) encoder* embeds question and chunks
separately, so chunks are embedded once; a *cross-encoder* reads question and chunk together (better, but one
forward pass per pair — only affordable for re-ranking a short list).

**MMR** picks $\arg\max_{d} \; \lambda\,\mathrm{sim}(q, d) - (1-\lambda) \max_{s \in S} \mathrm{sim}(d, s)$.
**Hybrid** fuses rankings by reciprocal rank fusion $\sum_r w_r / (60 + \mathrm{rank}_r(d))$.

**RAG triad** (as in TruLens), here by embedding cosine: context relevance $=\mathrm{mean}_j\,\mathrm{sim}(q, c_j)$,
groundedness $=\mathrm{mean}_{s \in a}\,\max_j \mathrm{sim}(s, c_j)$, answer relevance $=\mathrm{sim}(q, a)$.
""",
    split._merge, store.distance, retrieve.mmr, retrieve.rrf, evaluate.triad,
    paper="Lewis et al. 2020, Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks · Carbonell & "
          "Goldstein 1998 (MMR) · Cormack, Clarke & Büttcher 2009 (RRF) · Gao et al. 2022, Precise Zero-Shot Dense "
          "Retrieval without Relevance Labels (HyDE) · TruLens, the RAG triad.",
)
