"""The 5 · Evaluate tab of the RAG page: one evaluated configuration's summary, the leaderboard of all of them, and
C9, RAG vs no-RAG on the whole question set with its figures and claim box."""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import streamlit as st

import ui
from labs.core import charts, settings
from labs.rag import charts as rag_charts
from labs.rag import evaluate
from labs.runs import jobs, results
from ui.lessons import claim_box, pending
from ui.rag.shared import embedder, embedder_key


P = "rag"


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
                "of the fusion below; only their sentences closest to the question, and if you tick the box once "
                "more with the whole chunks) and with the question alone, and scored by **contains the "
                "answer** (the reference's key term, e.g. `sort_keys`) and by **similarity to the reference answer** "
                "(MiniLM cosine; a 135M LLM judge is too position-biased to grade — see the Evaluation page, C13). "
                "Retrieval alone is compared across modes: dense, keyword (BM25) and hybrid at several weights.")
    weight = st.select_slider("Hybrid: BM25's share of the fusion", [0.1, 0.2, 0.3, 0.4, 0.5, 0.7],
                              value=d.hybrid_weight, key="rag_claim_weight",
                              help=f"The RAG answers use hybrid retrieval with this weight. {d.hybrid_weight} was the "
                                   "best on the bundled questions (tuned on them, so it flatters hybrid a little).")
    compress_to = st.select_slider("Sentences the model reads (0 = the whole chunks)", [0, 1, 2, 3, 4, 6],
                                   value=d.compress_to, key="rag_claim_compress",
                                   help="Contextual compression, as in Retrieve & generate (0 = hand the model the "
                                        "whole chunks).")
    whole = st.checkbox("Also answer from the whole chunks, for comparison", value=d.whole_chunks,
                        key="rag_claim_whole", disabled=compress_to == 0,
                        help="Every question once more with the whole chunks instead of their closest sentences: "
                             "shows what compression buys, and makes the run about twice as long.")
    available = len(evaluate.questions(modules))
    if st.button("Compare RAG with no-RAG", key="rag_claim_go", disabled=available == 0,
                 help="Runs in the background: retrieval for every mode (seconds), then 2 answers per question "
                      "(3 with the whole-chunks box), batched: about a minute on 2 cores, twice that with the box."):
        with ui.friendly_errors("RAG vs no-RAG"):
            cfg = evaluate.RagClaimConfig(n_questions=available, hybrid_weight=float(weight), corpus_modules=modules,
                                          compress_to=int(compress_to), whole_chunks=bool(whole),
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
