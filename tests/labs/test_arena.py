"""Arena invariants: Elo is zero-sum, Bradley–Terry recovers known strengths, bootstrap CIs cover, ties as defined,
pairs balance votes and never pit a model against itself, battles stream two answers and accept one vote."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from labs import arena
from labs.arena import votes


def simulate(true: dict[str, float], n: int, seed: int, tie_rate: float = 0.0) -> list[dict]:
    """Votes from a known Bradley–Terry world: P(A beats B) = 1 / (1 + 10^((R_B − R_A)/400))."""
    rng = random.Random(seed)
    names = list(true)
    out = []
    for _ in range(n):
        a, b = rng.sample(names, 2)
        if rng.random() < tie_rate:
            outcome = "tie"
        else:
            outcome = "a" if rng.random() < arena.expected_score(true[a], true[b]) else "b"
        out.append({"model_a": a, "model_b": b, "outcome": outcome})
    return out


@pytest.mark.parametrize("ra,rb,s,k", [(1000, 1000, 1, 16), (1200, 900, 0, 32), (1000, 1400, 0.5, 4), (800, 800, 0.5, 64)])
def test_elo_update_sums_to_zero(ra, rb, s, k):
    na, nb = arena.elo_update(ra, rb, s, k)
    assert na + nb == pytest.approx(ra + rb, abs=1e-9)
    assert abs(na - ra) <= k


def test_elo_expected_score_and_direction():
    assert arena.expected_score(1400, 1000) == pytest.approx(10 / 11)  # 400 points = 10:1 odds
    na, _ = arena.elo_update(1000, 1000, 1.0, 16)
    assert na == pytest.approx(1008)  # K * (1 - 0.5)
    na, _ = arena.elo_update(1000, 1000, 0.5, 16)
    assert na == pytest.approx(1000)  # an expected tie changes nothing


def test_online_elo_total_is_conserved_and_order_matters():
    battles = simulate({"x": 1100, "y": 1000, "z": 900}, 60, seed=1)
    ratings = arena.online_elo(battles, k=32)
    assert sum(ratings.values()) == pytest.approx(3 * arena.BASE_RATING)
    spread = arena.elo_over_orders(battles, k=32, n_orders=20)
    assert any(hi - lo > 1 for lo, hi in spread.values()), "shuffling the vote order should move online Elo"
    # Bradley–Terry does not care about the order
    shuffled = list(battles)
    random.Random(3).shuffle(shuffled)
    a, b = arena.bradley_terry(battles), arena.bradley_terry(shuffled)
    assert all(a[m] == pytest.approx(b[m], abs=1e-6) for m in a)


def test_bt_recovers_known_ordering_and_gaps():
    true = {"strong": 1300, "good": 1100, "fair": 950, "weak": 650}
    fit = arena.bradley_terry(simulate(true, 3000, seed=0), prior_sd=4000)
    assert sorted(fit, key=fit.get, reverse=True) == ["strong", "good", "fair", "weak"]
    mean_true = sum(true.values()) / len(true)
    for m in true:  # ratings are anchored at mean 1000, so compare centred values
        assert fit[m] - 1000 == pytest.approx(true[m] - mean_true, abs=60)


def test_bt_newton_matches_a_generic_optimiser():
    """The hand-written Newton solver against scipy on the same regularised log-likelihood."""
    from scipy.optimize import minimize

    battles = simulate({"a": 1200, "b": 1000, "c": 900}, 200, seed=4, tie_rate=0.2)
    names, ia, ib, s = arena._encode(battles, "half")
    wins = arena._win_matrix(ia, ib, s, len(names))
    prior_sd = 300.0
    lam = (400 / prior_sd) ** 2

    def nll(theta):
        d = theta[:, None] - theta[None, :]
        return -(wins * -np.log1p(10.0 ** (-d))).sum() + lam / 2 * (theta**2).sum()

    ref = minimize(nll, np.zeros(len(names)), method="BFGS", options={"gtol": 1e-9}).x
    np.testing.assert_allclose(arena.bt_from_wins(wins, prior_sd), ref, atol=1e-4)


def test_bt_stays_finite_with_only_wins():
    battles = [{"model_a": "champ", "model_b": "chump", "outcome": "a"}] * 12
    fit = arena.bradley_terry(battles)
    assert all(math.isfinite(v) for v in fit.values())
    assert fit["champ"] > fit["chump"]
    assert fit["champ"] + fit["chump"] == pytest.approx(2000)


def test_ties_half_and_excluded():
    assert [arena.score_a(o) for o in ("a", "b", "tie", "bothbad")] == [1.0, 0.0, 0.5, 0.5]
    assert arena.score_a("tie", "exclude") is None and arena.score_a("bothbad", "exclude") is None
    only_ties = [{"model_a": "p", "model_b": "q", "outcome": "tie"}] * 10
    half = arena.bradley_terry(only_ties, ties="half")
    assert half["p"] == pytest.approx(half["q"])
    # excluded ties: one decisive vote is all that counts, so p pulls ahead
    mixed = only_ties + [{"model_a": "p", "model_b": "q", "outcome": "a"}]
    assert arena.bradley_terry(mixed, ties="exclude")["p"] - 1000 > arena.bradley_terry(mixed, ties="half")["p"] - 1000
    names, rate, games = arena.pair_matrices(mixed, ties="half")
    i, j = names.index("p"), names.index("q")
    assert games[i, j] == 11 and rate[i, j] == pytest.approx(5.5 / 11 + 0.5 / 11)
    assert rate[i, j] + rate[j, i] == pytest.approx(1.0)


def test_bootstrap_ci_contains_estimate_and_narrows_with_votes():
    true = {"a": 1150, "b": 1000, "c": 850}
    few, many = simulate(true, 60, seed=2), simulate(true, 1200, seed=2)
    widths = []
    for battles in (few, many):
        est = arena.bradley_terry(battles)
        ci = arena.bootstrap_ci(battles, n_boot=150, seed=0)
        for m in true:
            assert ci[m][0] <= est[m] <= ci[m][1]
        widths.append(np.mean([hi - lo for lo, hi in ci.values()]))
    assert widths[1] < widths[0] / 2


def test_bootstrap_ci_covers_truth_near_nominal_rate():
    true = {"a": 1100, "b": 1030, "c": 970, "d": 900}  # mean 1000, so the truth is on the fitted anchor
    hits = total = 0
    for rep in range(25):
        ci = arena.bootstrap_ci(simulate(true, 400, seed=100 + rep), n_boot=100, seed=rep, prior_sd=2000)
        for m, r in true.items():
            hits += ci[m][0] <= r <= ci[m][1]
            total += 1
    assert 0.82 <= hits / total <= 1.0, f"coverage {hits / total:.2f} is far from the nominal 0.95"


def test_rank_ub_and_leaderboard():
    intervals = {"top": (1100, 1200), "mid": (990, 1110), "low": (800, 950)}
    assert arena.rank_ub(intervals) == {"top": 1, "mid": 1, "low": 3}
    rows = arena.leaderboard(simulate({"x": 1200, "y": 1000, "z": 800}, 300, seed=5) +
                             [{"model_a": "new", "model_b": "x", "outcome": "b"}], n_boot=50, provisional_below=10)
    assert [r.model for r in rows][0] == "x"
    by = {r.model: r for r in rows}
    assert by["new"].provisional and by["new"].votes == 1 and not by["x"].provisional
    assert by["x"].rank_ub == 1 and all(r.lower <= r.rating <= r.upper for r in rows)
    assert sum(r.wins for r in rows) + sum(r.ties for r in rows) / 2 == pytest.approx(301)


def test_sample_pair_fewest_votes_first_and_never_self():
    rng = random.Random(0)
    names = ["a", "b", "c", "d"]
    counts = {"a": 10, "b": 10, "c": 0, "d": 3}
    for _ in range(50):
        x, y = arena.sample_pair(names, counts, rng)
        assert x != y and "c" in (x, y) and "d" in (x, y)
    # balance: simulate a room voting; counts stay within one of each other
    counts = {}
    positions = {"a": 0}
    for _ in range(200):
        x, y = arena.sample_pair(names, counts, rng)
        assert x != y
        for m in (x, y):
            counts[m] = counts.get(m, 0) + 1
        positions["a"] += x == "a"
    assert max(counts.values()) - min(counts.values()) <= 1
    assert 30 < positions["a"] < 70  # 'a' sits at position A about half of its ~100 battles
    with pytest.raises(ValueError):
        arena.sample_pair(["a", "a"], {}, rng)


def test_prompt_bank_and_prompt_checks():
    bank = arena.prompt_bank()
    assert len(bank) >= 30 and all(p["prompt"].strip() and p["category"] for p in bank)
    with pytest.raises(ValueError, match="empty"):
        arena.check_prompt("   ")
    with pytest.raises(ValueError, match="at most"):
        arena.check_prompt("x" * (votes.MAX_PROMPT_CHARS + 1))


def test_password_gate_backs_off():
    gate = arena.PasswordGate(free_tries=2, first_wait_s=2, max_wait_s=10)
    assert gate.check("s", "x", None)[0] is False
    assert gate.check("s", "wrong", "pw", now=0)[1] == "Wrong password."
    ok, msg = gate.check("s", "wrong", "pw", now=0)
    assert not ok and "wait 2 s" in msg
    assert "try again" in gate.check("s", "pw", "pw", now=1)[1]  # even the right one waits
    assert gate.check("s", "pw", "pw", now=3)[0] is True
    assert gate.check("other", "pw", "pw", now=0)[0] is True


def test_battle_streams_both_answers_and_takes_one_vote(tiny, tiny_gemma, tmp_path):
    lms = {"smollm2-135m-instruct": tiny, "gemma3-270m": tiny_gemma}
    a, b = arena.BUILT_IN[0], arena.BUILT_IN[3]
    store = votes.VoteStore(f"sqlite:///{tmp_path / 'v.sqlite'}")
    battle = arena.start_battle("Say hi", a, b, lms.__getitem__, max_new_tokens=8, seed=1)
    assert arena.get_battle(battle.id) is battle
    assert battle.wait(60)
    snap = battle.snapshot()
    assert snap["a"]["done"] and snap["b"]["done"] and not battle.failed, (snap, battle.a.error, battle.b.error)
    assert snap["a"]["text"] and snap["b"]["text"]
    battle.vote(store, "voter1", "a")
    with pytest.raises(votes.VoteRejected, match="already voted"):
        battle.vote(store, "voter1", "b")
    rows = store.votes()
    assert len(rows) == 1 and rows[0]["model_a"] == a.name and rows[0]["answer_b"] == battle.b.text
    assert rows[0]["latency_a_s"] > 0
    with pytest.raises(ValueError, match="itself"):
        arena.start_battle("hi", a, a, lms.__getitem__)


def test_vote_before_answers_finish_is_refused(tiny, tmp_path):
    store = votes.VoteStore(f"sqlite:///{tmp_path / 'v.sqlite'}")
    with tiny.lock:  # holding the shared model's lock keeps both answers unfinished
        battle = arena.start_battle("Count to a hundred", arena.BUILT_IN[0], arena.BUILT_IN[2], lambda k: tiny,
                                    max_new_tokens=400, seed=1)
        with pytest.raises(votes.VoteRejected, match="Wait until both"):
            battle.vote(store, "v", "a")
        battle.stop()
    battle.wait(30)
    assert store.count() == 0


def test_join_url_and_qr_code():
    lan = arena.lan_address()
    assert arena.join_url("http://localhost:8606/arena?x=1", 8501) == f"http://{lan}:8606/arena"
    assert arena.join_url("https://lab.example.org/arena", 8501) == "https://lab.example.org/arena"
    assert arena.join_url(None, 8501) == f"http://{lan}:8501/arena"
    assert arena.qr_png("http://10.0.0.2:8501/arena").startswith(b"\x89PNG")
