"""The vote store on SQLite (WAL) and on a real PostgreSQL server: one vote per battle, blind votes only,
per-voter cap, open/closed voting, board reset, exports, concurrency, and durability after a hard kill."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labs.arena import votes

ROOT = Path(__file__).resolve().parents[2]


def make_vote(i: int, outcome: str = "a", voter: str = "v1", blind: bool = True, **kw) -> votes.Vote:
    return votes.Vote(battle_id=f"battle-{i}", voter_id=voter, prompt=f"<b>prompt {i}</b>", model_a="m1", model_b="m2",
                      answer_a=f"answer A {i}", answer_b=f"answer B {i}", outcome=outcome, blind=blind,
                      latency_a_s=0.5, latency_b_s=0.7, **kw)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = votes.VoteStore(f"sqlite:///{tmp_path / 'votes.sqlite'}")
    else:
        url = request.getfixturevalue("postgres_url")
        s = votes.VoteStore(url)
        with s.engine.begin() as conn:  # each test starts from an empty board
            for table in (votes.votes_table, votes.state_table, votes.removed_table, votes.audit_table):
                conn.execute(table.delete())
        s = votes.VoteStore(url)
    yield s
    s.dispose()


# ---- behaviour on both databases ---------------------------------------------------------------------------
def test_record_and_read_back(store):
    row = store.record(make_vote(1, "b"))
    assert row >= 1
    got = store.votes()
    assert len(got) == 1
    v = got[0]
    assert (v["battle_id"], v["outcome"], v["model_a"], v["prompt"]) == ("battle-1", "b", "m1", "<b>prompt 1</b>")
    assert v["latency_b_s"] == pytest.approx(0.7) and v["voted_at"] >= v["battle_started"] - 1
    assert store.has_vote("battle-1") and not store.has_vote("battle-2")


def test_one_vote_per_battle(store):
    store.record(make_vote(1))
    with pytest.raises(votes.VoteRejected, match="already has a vote"):
        store.record(make_vote(1, "b", voter="someone else"))
    assert store.count() == 1


def test_only_blind_votes_count(store):
    store.record(make_vote(1))
    store.record(make_vote(2, blind=False))
    assert store.count() == 1 and [v["battle_id"] for v in store.votes()] == ["battle-1"]
    assert store.count(blind_only=False) == 2


def test_voter_cap_closed_voting_and_reset(store):
    store.set_voter_cap(2)
    store.record(make_vote(1))
    store.record(make_vote(2))
    with pytest.raises(votes.VoteRejected, match="cap"):
        store.record(make_vote(3))
    store.record(make_vote(4, voter="v2"))  # the cap is per voter
    store.set_voter_cap(0)
    store.set_voting_open(False)
    with pytest.raises(votes.VoteRejected, match="closed"):
        store.record(make_vote(5))
    store.set_voting_open(True)
    old = store.board()
    assert store.reset_board() == old + 1
    assert store.count() == 0 and store.count(all_boards=True) == 3  # old votes are kept, just not on the board
    store.record(make_vote(6))
    assert [v["battle_id"] for v in store.votes()] == ["battle-6"]
    assert store.voters() == 1


def test_votes_per_voter_removal_join_code_and_instructor_log(store):
    for i in range(3):
        store.record(make_vote(i, voter="stuffer"))
    store.record(make_vote(10, "b", voter="ada"))
    store.record(make_vote(11, "b", voter="ada", blind=False))
    per = store.votes_per_voter()
    assert [(r["voter"], r["votes"], r["blind"]) for r in per] == [("stuffer", 3, 3), ("ada", 2, 1)]
    assert store.remove_voter("stuffer", by="prof") == 3
    assert store.voters() == 1 and store.count() == 1 and len(store.removed_votes()) == 3
    assert store.actions()[0]["action"] == "remove voter" and store.actions()[0]["who"] == "prof"
    code = store.join_code()
    assert store.join_code_ok(code) and not store.join_code_ok(code + "X")
    assert store.url_loading()
    store.set_url_loading(False, by="prof")
    assert not store.url_loading() and [a["action"] for a in store.actions()][:2] == ["URL loading off", "remove voter"]


def test_invalid_votes_are_rejected(store):
    with pytest.raises(votes.VoteRejected):
        store.record(make_vote(1, outcome="A is better"))
    bad = make_vote(2)
    bad.model_b = bad.model_a
    with pytest.raises(votes.VoteRejected, match="itself"):
        store.record(bad)
    assert store.count() == 0


def test_concurrent_voters_nothing_lost_or_doubled(store):
    """16 threads = 16 voters, 5 votes each, plus every battle submitted twice (a double click)."""
    errors, rejected = [], []

    def voter(v: int):
        for i in range(5):
            for _ in range(2):
                try:
                    store.record(make_vote(v * 100 + i, voter=f"v{v}"))
                except votes.VoteRejected:
                    rejected.append(1)
                except Exception as exc:  # noqa: BLE001
                    errors.append(exc)

    threads = [threading.Thread(target=voter, args=(v,)) for v in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count() == 80 and len(rejected) == 80
    assert len({v["battle_id"] for v in store.votes()}) == 80


def test_exports(store):
    store.record(make_vote(1, "a"))
    store.record(make_vote(2, "b"))
    store.record(make_vote(3, "tie"))
    store.record(make_vote(4, "bothbad"))
    rows = store.votes()
    table = list(csv.DictReader(io.StringIO(votes.to_csv(rows))))
    assert [r["outcome"] for r in table] == ["a", "b", "tie", "bothbad"] and "latency_a_s" in table[0]
    lines = [json.loads(line) for line in votes.to_jsonl(rows).splitlines()]
    assert lines[0]["prompt"] == "<b>prompt 1</b>"
    pairs = votes.export_preference_pairs(store)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("answer A 1", "answer B 1"), ("answer B 2", "answer A 2")]
    assert pairs[1]["chosen_model"] == "m2" and set(pairs[0]) >= {"prompt", "chosen", "rejected"}


# ---- SQLite specifics ---------------------------------------------------------------------------------------
def test_sqlite_is_in_wal_mode_and_default_url(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    monkeypatch.delenv("LLMLAB_DB_URL", raising=False)
    s = votes.open_store()
    assert s.url.startswith("sqlite:///") and str(tmp_path) in s.url
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert votes.open_store() is s
    assert votes.normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert "s3cret" not in votes.safe_url("postgresql://u:s3cret@h/db")


WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from labs.arena import votes
store = votes.VoteStore({url!r})
for i in range(100000):
    store.record(votes.Vote(battle_id=f"b{{i}}", voter_id="v", prompt="p", model_a="x", model_b="y",
                            answer_a="1", answer_b="2", outcome="a"))
    print(i, flush=True)  # the acknowledgement: printed only after the commit returned
"""


def test_acknowledged_votes_survive_a_hard_kill(tmp_path):
    url = f"sqlite:///{tmp_path / 'votes.sqlite'}"
    votes.VoteStore(url).dispose()
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT), url=url)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    acked = -1
    deadline = time.time() + 60
    try:
        while acked < 30 and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked = int(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream, no clean shutdown
        proc.wait(10)
    assert acked >= 30, proc.stderr.read()
    stored = {v["battle_id"] for v in votes.VoteStore(url).votes()}
    assert {f"b{i}" for i in range(acked + 1)} <= stored
