"""The arena page under AppTest with tiny models: a blind battle streams two answers, the vote unlocks only when
both are done, one vote per battle, names revealed after it, the leaderboard counts it; bad input and the
instructor gate."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labs import arena
from labs.arena import votes

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "60_Arena.py")
SMOL = [c.name for c in arena.BUILT_IN if c.model_key == "smollm2-135m-instruct"][:2]  # fast tiny contenders


@pytest.fixture
def app(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))  # a fresh vote store per test
    monkeypatch.delenv("LLMLAB_DB_URL", raising=False)
    monkeypatch.setattr(arena.classroom, "vote_limiter", arena.BurstLimit())  # every test starts with no recent votes
    monkeypatch.setattr(arena.classroom, "instructor_gate", arena.PasswordGate())
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def join(at: AppTest, name: str, code: str | None = None) -> None:
    """Give a name (and the join code, when the page asks for one) in the join form."""
    at.text_input(key="arena_name").set_value(name)
    if code is not None:
        at.text_input(key="arena_code").set_value(code)
    next(b for b in at.button if b.label == "Join").click().run()
    assert not at.exception, [e.value for e in at.exception]


def start_battle(at: AppTest, prompt: str) -> arena.Battle:
    """Press Battle! with the two fast tiny contenders and the shortest answers; the battle it started."""
    at.multiselect(key="arena_contenders").set_value(SMOL)
    at.slider(key="arena_max_tokens").set_value(16)
    at.text_area(key="arena_prompt").set_value(prompt)
    at.button(key="arena_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return arena.get_battle(at.session_state["arena_battle_id"])


def battle_once(at: AppTest, prompt: str) -> arena.Battle:
    battle = start_battle(at, prompt)
    assert battle is not None and {battle.a.contender.name, battle.b.contender.name} == set(SMOL)
    assert battle.wait(90)
    at.run()
    return battle


def test_blind_battle_vote_reveal_and_leaderboard(app):
    at = app
    assert at.button(key="arena_vote_a").disabled  # nothing to vote on yet
    battle = battle_once(at, "Say <b>hi</b> & <script>alert(1)</script>")
    assert at.button(key="arena_vote_b").disabled  # no name given yet
    join(at, "Ada Lovelace")
    assert any("Voting as **Ada Lovelace**" in c.value for c in at.caption)
    texts = [t.value for t in at.text]
    assert any(battle.a.text.strip()[:10] in t for t in texts)  # answers are plain text, not HTML
    assert not any(battle.a.contender.name in m.value for m in at.markdown if "Model A" in m.value)  # still anonymous
    assert not at.button(key="arena_vote_b").disabled
    at.button(key="arena_vote_b").click().run()
    assert not at.exception
    assert any("Thanks" in s.value for s in at.success)
    assert any(battle.a.contender.name in i.value and battle.b.contender.name in i.value for i in at.info)
    assert at.button(key="arena_vote_a").disabled and at.button(key="arena_vote_b").disabled  # one vote per battle
    store = votes.open_store()
    rows = store.votes()
    assert len(rows) == 1 and rows[0]["outcome"] == "b" and rows[0]["voter_id"] == "ada lovelace"
    assert rows[0]["prompt"].startswith("Say <b>hi</b>")
    board = at.dataframe[0].value  # the leaderboard comes before the recent-votes table
    assert set(board["Votes"]) == {1} and len(board) == 2
    # a stale page clicking again on the voted battle is refused by the battle itself
    with pytest.raises(votes.VoteRejected):
        battle.vote(store, "someone", "a")
    # regenerate: same contenders in the same places, a fresh battle
    at.button(key="arena_regen").click().run()
    again = arena.get_battle(at.session_state["arena_battle_id"])
    assert again.id != battle.id and again.a.contender == battle.a.contender
    again.wait(90)
    at.button(key="arena_new").click().run()
    assert at.session_state["arena_battle_id"] is None and at.session_state["arena_prompt"] == ""


def test_empty_and_named_battles(app):
    at = app
    at.text_area(key="arena_prompt").set_value("   ")
    at.button(key="arena_go").click().run()
    assert any("empty" in e.value for e in at.error)
    assert at.session_state["arena_battle_id"] is None
    at.toggle(key="arena_named").set_value(True).run()
    at.selectbox(key="arena_pick_a").set_value(SMOL[0])
    at.selectbox(key="arena_pick_b").set_value(SMOL[0])
    at.text_area(key="arena_prompt").set_value("Hello")
    at.button(key="arena_go").click().run()
    assert any("two different" in e.value for e in at.error)
    at.selectbox(key="arena_pick_b").set_value(SMOL[1])
    at.slider(key="arena_max_tokens").set_value(16)
    at.button(key="arena_go").click().run()
    battle = arena.get_battle(at.session_state["arena_battle_id"])
    assert battle.wait(90) and not battle.blind
    at.run()
    join(at, "s1234567")
    at.button(key="arena_vote_tie").click().run()
    store = votes.open_store()
    assert store.count() == 0 and store.count(blind_only=False) == 1  # named votes are kept but do not count


def test_instructor_gate_and_closed_voting(app):
    at = app
    assert any("No instructor password is set" in w.value and "arena_password" in w.value
               and ".streamlit/secrets.toml" in w.value for w in at.warning)  # says exactly how to set one
    assert not [t for t in at.text_input if t.key == "arena_pw"]
    at.secrets["arena_password"] = "s3cret"
    at.run()
    at.text_input(key="arena_pw").set_value("wrong")
    at.button(key="arena_unlock").click().run()
    assert any("Wrong password" in e.value for e in at.error) and not at.session_state["arena_instructor"]
    at.text_input(key="arena_pw").set_value("s3cret")
    at.button(key="arena_unlock").click().run()
    assert at.session_state["arena_instructor"]
    at.button(key="arena_toggle_open").click().run()
    assert not votes.open_store().voting_open()
    battle = battle_once(at, "What is 2 + 2?")
    join(at, "Grace", code=votes.open_store().join_code())
    at.button(key="arena_vote_a").click().run()
    assert any("closed" in w.value for w in at.warning)
    assert votes.open_store().count() == 0 and battle.outcome is None


def test_unreachable_database_is_a_message_not_a_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    monkeypatch.setenv("LLMLAB_DB_URL", "postgresql://arena:pw@127.0.0.1:1/nowhere")
    monkeypatch.setenv("LLMLAB_RUN_QUEUE", "local")  # the vote store's message, whichever queue this process has
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    assert any("vote store could not be opened" in e.value and "pw@" not in e.value for e in at.error)


def test_join_pressed_while_the_battle_finishes_is_kept(app, monkeypatch):
    """The lost voter: Join clicked in the very run in which both answers finish. The finished battle asked for a
    rerun before the form's button was read, and the click was thrown away; Join is now a callback."""
    from labs.core import compute
    from ui.arena import battle as battle_ui

    at, held, armed = app, compute._generation_lock, []
    original = battle_ui.draw_answers

    def finish_then_draw(b):
        if armed and held.locked():
            held.release()  # the decoder goes on: the battle ends while this run is drawing it
            assert b.wait(90)
        original(b)

    monkeypatch.setattr(battle_ui, "draw_answers", finish_then_draw)
    held.acquire()  # the decoder waits: the battle is running when the next run starts
    try:
        battle = start_battle(at, "Tell me about cats")
        assert battle is not None and not battle.finished
        armed.append(True)
        join(at, "Grace Hopper")
    finally:
        if held.locked():
            held.release()
    assert battle.finished
    assert at.session_state["arena_voter"] == votes.voter_key("Grace Hopper")
    at.run()
    assert not at.button(key="arena_vote_a").disabled
    assert not any(b.label == "Join" for b in at.button)


def test_a_replaced_session_keeps_its_name_and_its_battle(app):
    """A reconnect that the server no longer knows (or a reload) starts a new session: the tab's address keeps
    the name and the battle."""
    at = app
    join(at, "Ada Lovelace")
    battle = battle_once(at, "Hello there")
    assert at.query_params["voter"] == "Ada Lovelace" and at.query_params["battle"] == battle.id
    fresh = AppTest.from_file(PAGE, default_timeout=120)
    fresh.query_params["voter"] = "Ada Lovelace"
    fresh.query_params["battle"] = battle.id
    fresh.run()
    assert not fresh.exception
    assert fresh.session_state["arena_voter"] == votes.voter_key("Ada Lovelace")
    assert fresh.session_state["arena_battle_id"] == battle.id
    fresh.button(key="arena_vote_a").click().run()
    assert battle.outcome is not None


def test_a_stuck_battle_says_why_and_retries(app, monkeypatch):
    """An answer that cannot start (here: the decoder is held) is reported after STALL_S with a Retry that starts
    the same two contenders again."""
    from labs.core import compute

    monkeypatch.setattr(arena.battles, "STALL_S", 0.3)
    at, held = app, compute._generation_lock
    held.acquire()
    try:
        stuck = start_battle(at, "Tell me about cats")
        time.sleep(0.5)
        at.run()
        assert any("did not start" in w.value for w in at.warning)
        at.button(key="arena_retry").click().run()
        assert not at.exception, [e.value for e in at.exception]
    finally:
        held.release()
    fresh = arena.get_battle(at.session_state["arena_battle_id"])
    assert fresh.id != stuck.id and stuck.stop_event.is_set()
    assert {fresh.a.contender.name, fresh.b.contender.name} == {stuck.a.contender.name, stuck.b.contender.name}
    assert fresh.wait(90)
