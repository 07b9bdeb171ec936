"""RAG page: load a few modules, embed, ask (tiny model), an off-topic question, bad settings, one evaluation run."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labs.runs import jobs

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "50_RAG_playground.py")
MODULES = ["bisect", "glob", "fnmatch"]  # a few small modules: embeds in seconds


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    assert not at.exception
    return at


def _texts(at) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.info]
    return "\n".join(str(p) for p in parts)


def test_load_split_embed_ask_and_evaluate(app):
    at = app
    at.multiselect(key="rag_modules").set_value(MODULES).run()
    assert not at.exception
    assert any(m.label == "Chunks" for m in at.metric)
    at.button(key="rag_build").click().run()
    assert not at.exception and not at.error
    index = at.session_state["rag_index"]
    assert index is not None and len(index) == index.collection.count()

    at.text_input(key="rag_question").set_value("How do I insert an item into a sorted list and keep it sorted?")
    at.slider(key="rag_max_tokens").set_value(16)
    at.button(key="rag_ask").click().run()
    assert not at.exception and not at.error
    result = at.session_state["rag_result"]
    assert result.hits[0].chunk.source == "bisect"
    answers = at.session_state["rag_answers"]
    assert answers["rag"] and "plain" in answers
    assert any("Retrieved chunks" in m.value for m in at.markdown)

    at.text_input(key="rag_question").set_value("How do I bake sourdough bread?")
    at.button(key="rag_ask").click().run()
    assert at.session_state["rag_answers"]["rag"].startswith("I don't know")

    at.number_input(key="rag_eval_n").set_value(2)
    at.checkbox(key="rag_eval_generate").uncheck()
    at.button(key="rag_eval_run").click().run()
    run_id = at.session_state["rag_eval_run_id"]
    assert jobs.wait(run_id, timeout=300).status == jobs.DONE
    at.run()
    assert not at.exception
    assert any(m.label.startswith("hit@") for m in at.metric)
    assert "rag_board" in [getattr(d, "key", None) for d in at.dataframe] or len(at.dataframe) >= 2


def test_bad_split_settings_show_an_error(app):
    at = app
    at.multiselect(key="rag_modules").set_value(["glob"]).run()
    at.number_input(key="rag_chunk_size_chars").set_value(100)
    at.number_input(key="rag_overlap_chars").set_value(150).run()
    assert not at.exception
    assert any("smaller than the chunk size" in e.value for e in at.error)
    at.multiselect(key="rag_modules").set_value([]).run()
    assert not at.exception
    assert any("No documents yet" in i.value for i in at.info)


def test_rag_vs_no_rag_fills_the_c9_box(app):
    at = app
    assert any("Not measured yet" in i.value and "Compare RAG with no-RAG" in i.value for i in at.info)
    at.multiselect(key="rag_modules").set_value(MODULES).run()
    at.button(key="rag_claim_go").click().run()
    assert not at.exception and not at.error
    run = jobs.wait(at.session_state["rag_claim_run_id"], timeout=300)
    assert run.status == jobs.DONE, run.reason
    assert {"dense", "keyword (BM25)", "hybrid 0.3"} <= set(run.summary["hit_at_k"])
    at.run()
    assert not at.exception
    assert any("(C9)" in m.value for m in at.markdown)
    verdicts = [x.value for x in (*at.success, *at.warning, *at.info) if "RAG" in x.value and "no-RAG" in x.value]
    assert any("hit@k hybrid" in v for v in verdicts)  # computed from the run, both parts of the claim
    assert run.summary["whole_chunks_contains"] == []  # off by default: no 30 extra long-prompt answers
    at.checkbox(key="rag_claim_whole").check().run()
    at.button(key="rag_claim_go").click().run()
    again = jobs.wait(at.session_state["rag_claim_run_id"], timeout=300)
    assert again.id != run.id and len(again.summary["whole_chunks_contains"]) == again.summary["n"]


def test_installed_docs_split_by_headings_and_hybrid_hits_show_both_ranks(app):
    at = app
    at.radio(key="rag_source").set_value("Installed library docs").run()
    at.selectbox(key="rag_docset").set_value("streamlit-guides").run()
    at.radio(key="rag_method").set_value("markdown").run()
    assert not at.exception and not at.error
    at.selectbox(key="rag_view_doc").set_value("session-state.md").run()
    paths = [df.value for df in at.dataframe if "heading path" in getattr(df.value, "columns", [])]
    assert paths and paths[0]["heading path"].str.contains(" > ").any()  # nested headings, named in full
    at.button(key="rag_build").click().run()
    assert not at.exception and not at.error
    at.radio(key="rag_search").set_value("hybrid").run()
    assert at.radio(key="rag_fusion").value == "rrf" and at.slider(key="rag_bm25").disabled
    at.text_input(key="rag_question").set_value("How do I keep a counter between reruns of my app?")
    at.slider(key="rag_max_tokens").set_value(16)
    at.button(key="rag_ask").click().run()
    assert not at.exception and not at.error
    hits = at.session_state["rag_result"].hits
    assert all(h.dense_rank or h.bm25_rank for h in hits) and all(h.chunk.heading for h in hits)
    table = next(df.value for df in at.dataframe if "dense rank" in getattr(df.value, "columns", []))
    assert {"section", "BM25 rank", "method score"} <= set(table.columns)
