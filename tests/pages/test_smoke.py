"""Every page file loads without an exception under AppTest (tiny models). New pages join automatically."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(p for p in (ROOT / "pages").glob("[!_]*.py"))


@pytest.mark.parametrize("path", PAGES, ids=[p.stem for p in PAGES])
def test_page_loads(path, monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(str(path), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, "every page starts with a title"


def test_home_page_lists_every_lab_and_chats(monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert {"Device", "Threads", "dtype", "Matmul", "Memory bandwidth"} <= set(labels)
    at.chat_input(key="home_chat_input").set_value("Hello!").run()
    assert not at.exception
    assert len(at.chat_message) == 2
    assert at.session_state["home_messages"][-1]["role"] == "assistant"


def test_home_page_rejects_an_over_long_prompt(monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    at.chat_input(key="home_chat_input").set_value("word " * 9000).run()
    assert not at.exception
    assert any("reads at most" in e.value for e in at.error)
