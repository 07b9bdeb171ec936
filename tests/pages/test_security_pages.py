"""The class-server protections as a student meets them on the pages (AppTest, tiny models): URL loading refused
or switched off on the RAG page; one name = one voter, a burst refused, the join code, and the instructor's
per-voter view, removal and action log on the arena page. Every refusal is a message, never a traceback, and
nothing already stored is lost."""
from __future__ import annotations

import dataclasses
import http.server
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labs import arena
from labs.runs import jobs
from labs.arena import votes
from tests.pages.test_arena_page import join

ROOT = Path(__file__).resolve().parents[2]
RAG = str(ROOT / "pages" / "50_RAG_playground.py")
ARENA = str(ROOT / "pages" / "60_Arena.py")
SMOL = [c.name for c in arena.BUILT_IN if c.model_key == "smollm2-135m-instruct"][:2]


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))  # a fresh vote store (and class settings) per test
    monkeypatch.delenv("LLMLAB_DB_URL", raising=False)
    monkeypatch.delenv("LLMLAB_URL_LOADING", raising=False)
    monkeypatch.setattr(arena.classroom, "vote_limiter", arena.BurstLimit())
    monkeypatch.setattr(arena.classroom, "instructor_gate", arena.PasswordGate())


def texts(at, *kinds) -> str:
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


# ------------------------------------------------------------------------------------------ RAG page
@pytest.fixture
def secret_server():
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            body = b"internal secret"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/secret.txt", hits
    server.shutdown()
    server.server_close()


def rag_url_tab() -> AppTest:
    at = AppTest.from_file(RAG, default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    at.radio(key="rag_source").set_value("Web page (URL)").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_rag_page_refuses_the_servers_own_network(secret_server):
    url, hits = secret_server
    at = rag_url_tab()
    at.text_input(key="rag_url").set_value(url)
    at.button(key="rag_fetch").click().run()
    assert not at.exception
    assert any("Refused" in e.value and "loopback" in e.value and "upload" in e.value for e in at.error)
    assert at.session_state["rag_url_docs"] == [] and "internal secret" not in texts(at, "markdown", "dataframe")
    assert hits == []


def test_rag_page_says_when_url_loading_is_off(monkeypatch, secret_server):
    url, hits = secret_server
    votes.open_store().set_url_loading(False, by="prof")  # the instructor's switch in the classroom tab
    at = rag_url_tab()
    assert "instructor has turned URL loading off" in texts(at, "info")
    assert at.button(key="rag_fetch").disabled and at.text_input(key="rag_url").disabled
    votes.open_store().set_url_loading(True, by="prof")
    monkeypatch.setenv("LLMLAB_URL_LOADING", "off")  # the server-wide setting wins over the switch
    at.run()
    assert "LLMLAB_URL_LOADING=off" in texts(at, "info") and at.button(key="rag_fetch").disabled
    assert hits == []


# ------------------------------------------------------------------------------------------ arena page
def arena_session(query: dict | None = None, password: str | None = None) -> AppTest:
    at = AppTest.from_file(ARENA, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    if password:
        at.secrets["arena_password"] = password
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at




def battle_and_vote(at: AppTest, prompt: str, outcome: str = "a") -> arena.Battle:
    at.multiselect(key="arena_contenders").set_value(SMOL)
    at.slider(key="arena_max_tokens").set_value(16)
    at.text_area(key="arena_prompt").set_value(prompt)
    at.button(key="arena_go").click().run()
    battle = arena.get_battle(at.session_state["arena_battle_id"])
    assert battle is not None and battle.wait(90)
    at.run()
    at.button(key=f"arena_vote_{outcome}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return battle


def test_same_name_in_a_second_session_shares_the_cap():
    store = votes.open_store()
    store.set_voter_cap(1)
    phone = arena_session()
    join(phone, "Ada Lovelace")
    battle_and_vote(phone, "Name a colour.")
    assert "your vote is stored" in texts(phone, "success")
    laptop = arena_session()  # a private window: a new browser session...
    join(laptop, "  ada   lovelace")  # ...with the same name
    battle = battle_and_vote(laptop, "Name a fruit.")
    assert "cap for this board is 1" in texts(laptop, "warning") and battle.outcome is None
    assert store.count() == 1 and store.voters() == 1  # the first vote stands, the second is not stored
    board = arena_session()
    board.run()
    assert "1 blind votes from 1 voters" in texts(board, "caption")


def test_a_burst_from_one_address_is_refused_on_the_page(monkeypatch):
    monkeypatch.setattr(arena.classroom, "vote_limiter", arena.BurstLimit(1, 60))
    first = arena_session()
    join(first, "s100")
    battle_and_vote(first, "Say hi.")
    script = arena_session()  # another name from the same address within the minute
    join(script, "s101")
    battle = battle_and_vote(script, "Say hello.")
    assert "Too many votes from your address" in texts(script, "warning") and battle.outcome is None
    assert votes.open_store().count() == 1


def test_join_code_is_required_once_the_class_has_a_password():
    store = votes.open_store()
    stranger = arena_session(password="s3cret")
    join(stranger, "mallory", code="NOPE42")
    assert "not this room's code" in texts(stranger, "error") and stranger.session_state["arena_voter"] is None
    student = arena_session({"code": store.join_code()}, password="s3cret")  # opened the join link
    assert not [t for t in student.text_input if t.key == "arena_code"]  # the link carries the code
    join(student, "Grace")
    assert student.session_state["arena_voter"] == "grace"
    assert "Join code:" in texts(student, "markdown")


def test_instructor_sees_votes_per_voter_removes_one_and_every_action_is_logged():
    store = votes.open_store()
    for i in range(4):
        store.record(votes.Vote(battle_id=f"stuff-{i}", voter_id="stuffer", prompt="p", model_a="m1", model_b="m2",
                                answer_a="a", answer_b="b", outcome="a"))
    store.record(votes.Vote(battle_id="ada-1", voter_id="ada", prompt="p", model_a="m1", model_b="m2",
                            answer_a="a", answer_b="b", outcome="b"))
    at = arena_session(password="s3cret")
    at.text_input(key="arena_pw").set_value("nope")
    at.button(key="arena_unlock").click().run()
    at.text_input(key="arena_pw").set_value("s3cret")
    at.button(key="arena_unlock").click().run()
    assert at.session_state["arena_instructor"]
    per_voter = next(df.value for df in at.dataframe if "voter" in df.value.columns and "votes" in df.value.columns)
    assert list(per_voter["voter"]) == ["stuffer", "ada"] and list(per_voter["votes"]) == [4, 1]
    at.selectbox(key="arena_remove_who").set_value("stuffer")
    at.checkbox(key="arena_remove_sure").check().run()
    at.button(key="arena_remove").click().run()
    assert not at.exception
    assert "Removed 4 votes of 'stuffer'" in texts(at, "success")
    assert [r["voter_id"] for r in store.votes()] == ["ada"] and len(store.removed_votes()) == 4
    at.button(key="arena_toggle_open").click().run()
    at.button(key="arena_url_toggle").click().run()
    assert not store.voting_open() and not store.url_loading()
    log = next(df.value for df in at.dataframe if "action" in df.value.columns)
    assert list(log["action"])[:5] == ["URL loading off", "close voting", "remove voter", "unlock", "unlock refused"]
    assert all("session" in who for who in log["who"])
    assert all(when for when in log["when"])


# ------------------------------------------------------------------------------------------ one run per session
@dataclasses.dataclass(frozen=True)
class WaitConfig:
    nonce: float
    seed: int = 0


def wait_for_stop(ctx):
    while True:
        time.sleep(0.05)
        ctx.log(step=1)  # raises Stopped once Stop is pressed


def test_a_second_run_from_the_same_session_is_refused_with_a_message(monkeypatch):
    monkeypatch.setenv("LLMLAB_RUNS_PER_SESSION", "1")
    at = AppTest.from_file(str(ROOT / "pages" / "70_Linear_vs_full_attention.py"), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    me = at.session_state["llmlab_session"]
    first = jobs.submit(WaitConfig(time.time()), wait_for_stop, owner=me, label="My first run")
    try:
        at.multiselect(key="attn_cost_variants").set_value(["softmax"])
        at.button(key="attn_cost_go").click().run()
        assert not at.exception
        message = texts(at, "error")
        assert "You already have a run" in message and "My first run" in message, message
        assert ("position" in message) or ("running" in message)
        assert "attn_cost_run" not in at.session_state or at.session_state["attn_cost_run"] is None
        assert jobs.get(first).active  # the first run is untouched
    finally:
        jobs.stop(first)
        assert jobs.wait(first, 60).status == jobs.STOPPED


def test_class_mode_caps_answer_length_on_the_pages(monkeypatch):
    monkeypatch.setenv("LLMLAB_CLASS_MODE", "1")
    at = arena_session()
    assert at.slider(key="arena_max_tokens").max == 128 and at.slider(key="arena_max_tokens").value <= 128
    monkeypatch.setenv("LLMLAB_MAX_NEW_TOKENS", "32")
    at.run()
    assert at.slider(key="arena_max_tokens").max == 32
