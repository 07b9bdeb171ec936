"""Ratings: online Elo (order-dependent, K selectable) and Bradley–Terry maximum likelihood (order-free) on the
400-point scale, with percentile-bootstrap 95 % confidence intervals and Rank (UB); the leaderboard and its charts.

Shapes: P = number of models (the players), N = number of battles. Battles are dicts with model_a, model_b, outcome
(one of labs.arena.votes.OUTCOMES: "a", "b", "tie", "bothbad")."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from labs.core import charts
from labs.core.errors import ConfigError


LN10 = math.log(10.0)
BASE_RATING = 1000.0
SCALE = 400.0  # Elo's scale: a 400-point gap means 10:1 odds


# ---------------------------------------------------------------------------------------------------------
# 3. Ratings
# ---------------------------------------------------------------------------------------------------------
def score_a(outcome: str, ties: str = "half") -> float | None:
    """A's score in one battle: 1 win, 0 loss, ties (and both-bad) 0.5 or None (= left out)."""
    if outcome == "a":
        return 1.0
    if outcome == "b":
        return 0.0
    if ties not in ("half", "exclude"):
        raise ConfigError("ties must be 'half' or 'exclude'.")
    return 0.5 if ties == "half" else None


def expected_score(r_a: float, r_b: float) -> float:
    """Elo's expected score of A: 1 / (1 + 10^((R_B − R_A)/400))."""
    return 1.0 / (1.0 + 10.0 ** ((r_b - r_a) / SCALE))


def elo_update(r_a: float, r_b: float, s_a: float, k: float) -> tuple[float, float]:
    """One online Elo step (Elo 1978): A gains exactly what B loses, K · (S_A − E_A)."""
    delta = k * (s_a - expected_score(r_a, r_b))
    return r_a + delta, r_b - delta


def online_elo(battles: Sequence[dict], k: float = 16.0, ties: str = "half", base: float = BASE_RATING) -> dict[str, float]:
    """Ratings after replaying the votes in the given order. A different order gives different ratings."""
    ratings: dict[str, float] = {}
    for b in battles:
        s = score_a(b["outcome"], ties)
        ra, rb = ratings.setdefault(b["model_a"], base), ratings.setdefault(b["model_b"], base)
        if s is not None:
            ratings[b["model_a"]], ratings[b["model_b"]] = elo_update(ra, rb, s, k)
    return ratings


def elo_over_orders(battles: Sequence[dict], k: float = 16.0, ties: str = "half", n_orders: int = 50,
                    seed: int = 0) -> dict[str, tuple[float, float]]:
    """(lowest, highest) online-Elo rating of each model over shuffled vote orders: the order matters."""
    rng = random.Random(seed)
    seen: dict[str, list[float]] = {}
    order = list(battles)
    for _ in range(n_orders):
        rng.shuffle(order)
        for m, r in online_elo(order, k, ties).items():
            seen.setdefault(m, []).append(r)
    return {m: (min(rs), max(rs)) for m, rs in seen.items()}


def _encode(battles: Sequence[dict], ties: str, models: Sequence[str] | None = None):
    """Battles -> model list and arrays (ia, ib, s) with s = A's score; left-out ties are dropped."""
    names = list(models) if models is not None else sorted({m for b in battles for m in (b["model_a"], b["model_b"])})
    index = {m: i for i, m in enumerate(names)}
    ia, ib, s = [], [], []
    for b in battles:
        sc = score_a(b["outcome"], ties)
        if sc is None or b["model_a"] not in index or b["model_b"] not in index:
            continue
        ia.append(index[b["model_a"]])
        ib.append(index[b["model_b"]])
        s.append(sc)
    return names, np.array(ia, dtype=np.int64), np.array(ib, dtype=np.int64), np.array(s, dtype=np.float64)


def _win_matrix(ia: np.ndarray, ib: np.ndarray, s: np.ndarray, m: int, weights: np.ndarray | None = None) -> np.ndarray:
    """W[i, j] = total score i earned against j (a tie gives each side 0.5). Shape (P, P)."""
    w = np.ones_like(s) if weights is None else weights
    won = np.bincount(ia * m + ib, weights=w * s, minlength=m * m) + np.bincount(ib * m + ia, weights=w * (1 - s),
                                                                               minlength=m * m)
    return won.reshape(m, m)


def bt_from_wins(wins: np.ndarray, prior_sd: float = 400.0, iters: int = 100) -> np.ndarray:
    """Bradley–Terry MAP strengths θ (P,) in log10-odds units, by Newton's method.

    P(i beats j) = σ(ln10 · (θ_i − θ_j))   (Bradley & Terry 1952; Elo's 400-point scale is R = 1000 + 400 θ)
    log L(θ) = Σ_ij W_ij log P(i beats j) − λ/2 ‖θ‖²,  λ = (400 / prior_sd)²
    The Gaussian prior keeps θ finite when a model has only wins or only losses, and centres Σθ = 0.
    """
    m = wins.shape[0]
    n = wins + wins.T  # (P, P) games played between i and j (ties count once, split 0.5/0.5 in wins)
    lam = (SCALE / prior_sd) ** 2
    theta = np.zeros(m)
    for _ in range(iters):
        p = 1.0 / (1.0 + 10.0 ** (theta[None, :] - theta[:, None]))  # (P, P) P(i beats j)
        grad = LN10 * (wins - n * p).sum(axis=1) - lam * theta
        h = LN10**2 * n * p * (1 - p)  # (P, P) curvature of each pair
        hess = h - np.diag(h.sum(axis=1)) - lam * np.eye(m)  # negative definite for λ > 0
        step = np.linalg.solve(hess, grad)
        step = np.clip(step, -2.0, 2.0)  # at most 800 points per iteration: keeps Newton stable far from the optimum
        theta = theta - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta


def bradley_terry(battles: Sequence[dict], ties: str = "half", prior_sd: float = 400.0,
                  base: float = BASE_RATING) -> dict[str, float]:
    """Order-free ratings on the Elo scale (mean = base)."""
    names, ia, ib, s = _encode(battles, ties)
    if not names:
        return {}
    theta = bt_from_wins(_win_matrix(ia, ib, s, len(names)), prior_sd)
    return {m: base + SCALE * t for m, t in zip(names, theta)}


def bootstrap_ci(battles: Sequence[dict], ties: str = "half", prior_sd: float = 400.0, n_boot: int = 200,
                 seed: int = 0, level: float = 0.95, base: float = BASE_RATING) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap (Efron 1979) over battles: resample N battles with replacement, refit, take quantiles."""
    names, ia, ib, s = _encode(battles, ties)
    if not names or len(s) == 0:
        return {m: (base, base) for m in names}
    rng = np.random.default_rng(seed)
    m, n = len(names), len(s)
    samples = np.empty((n_boot, m))
    for r in range(n_boot):
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)  # (N,) times each battle drawn
        samples[r] = base + SCALE * bt_from_wins(_win_matrix(ia, ib, s, m, counts), prior_sd)
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return {name: (float(lo[i]), float(hi[i])) for i, name in enumerate(names)}


def rank_ub(intervals: dict[str, tuple[float, float]]) -> dict[str, int]:
    """Chatbot Arena's Rank (UB): 1 + the number of models whose lower bound beats this model's upper bound."""
    return {m: 1 + sum(1 for o, (lo_o, _) in intervals.items() if o != m and lo_o > hi) for m, (_, hi) in intervals.items()}


@dataclass(frozen=True)
class LeaderboardRow:
    """One model on the leaderboard: Bradley–Terry rating with its 95% bootstrap interval and upper-bound
    rank, online Elo and its range over vote orders, and the vote counts."""
    model: str
    rating: float  # Bradley–Terry
    lower: float  # 95% bootstrap interval
    upper: float
    rank_ub: int
    elo: float  # online Elo in vote order
    elo_low: float  # online Elo range over shuffled orders
    elo_high: float
    votes: int
    wins: int
    losses: int
    ties: int
    provisional: bool


def leaderboard(battles: Sequence[dict], *, ties: str = "half", k: float = 16.0, prior_sd: float = 400.0,
                n_boot: int = 200, provisional_below: int = 10, seed: int = 0, n_orders: int = 30) -> list[LeaderboardRow]:
    """Everything the leaderboard shows, best first."""
    battles = list(battles)
    if not battles:
        return []
    bt = bradley_terry(battles, ties, prior_sd)
    ci = bootstrap_ci(battles, ties, prior_sd, n_boot, seed)
    ranks = rank_ub(ci)
    elo = online_elo(battles, k, ties)
    orders = elo_over_orders(battles, k, ties, n_orders, seed)
    tally: dict[str, list[int]] = {}
    for b in battles:
        for side, other in (("a", "b"), ("b", "a")):
            t = tally.setdefault(b[f"model_{side}"], [0, 0, 0])
            t[0 if b["outcome"] == side else 1 if b["outcome"] == other else 2] += 1
    rows = []
    for m, rating in bt.items():
        w, lo_, t = tally.get(m, [0, 0, 0])
        lo, hi = ci.get(m, (rating, rating))
        rows.append(LeaderboardRow(m, rating, lo, hi, ranks.get(m, 1), elo.get(m, BASE_RATING),
                                   *orders.get(m, (BASE_RATING, BASE_RATING)), w + lo_ + t, w, lo_, t,
                                   w + lo_ + t < provisional_below))
    return sorted(rows, key=lambda r: -r.rating)


def pair_matrices(battles: Sequence[dict], ties: str = "half", models: Sequence[str] | None = None):
    """(names, win_rate (P, P) = score of row vs column / games, NaN where none; counts (P, P) battles)."""
    names, ia, ib, s = _encode(battles, ties, models)
    m = len(names)
    wins = _win_matrix(ia, ib, s, m) if m else np.zeros((0, 0))
    games = wins + wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(games > 0, wins / np.where(games > 0, games, 1), np.nan)
    return names, rate, games


def elo_history(battles: Sequence[dict], k: float = 16.0, ties: str = "half") -> dict[str, list[float]]:
    """Each model's online Elo after every vote (vote index 0..N), for the 'order matters' chart."""
    names = sorted({m for b in battles for m in (b["model_a"], b["model_b"])})
    ratings = {m: BASE_RATING for m in names}
    history = {m: [BASE_RATING] for m in names}
    for b in battles:
        s = score_a(b["outcome"], ties)
        if s is not None:
            ratings[b["model_a"]], ratings[b["model_b"]] = elo_update(ratings[b["model_a"]], ratings[b["model_b"]], s, k)
        for m in names:
            history[m].append(ratings[m])
    return history


# ---------------------------------------------------------------------------------------------------------
# Charts (plain data in, Plotly figure out)
# ---------------------------------------------------------------------------------------------------------
def ratings_figure(rows: Sequence[LeaderboardRow]):
    """Bradley–Terry ratings with their 95% bootstrap intervals (a forest plot), best on top."""
    rows = list(rows)[::-1]
    fig = go.Figure(go.Scatter(
        x=[r.rating for r in rows], y=[r.model + (" (provisional)" if r.provisional else "") for r in rows],
        mode="markers", marker=dict(size=11, color="#4C78A8"),
        error_x=dict(type="data", symmetric=False, array=[r.upper - r.rating for r in rows],
                     arrayminus=[r.rating - r.lower for r in rows]),
        hovertemplate="%{y}: %{x:.0f}<extra></extra>"))
    fig.add_vline(x=BASE_RATING, line_dash="dot", line_color="gray")
    fig.update_layout(title="Bradley–Terry rating with 95% bootstrap interval", xaxis_title="rating (400 points = 10:1 odds)",
                      height=120 + 40 * len(rows), margin=dict(l=10, r=10, t=40, b=10), template="plotly_white")
    return fig


def elo_history_figure(history: dict[str, list[float]], k: float):
    """Online Elo rating of each model after every vote (K the update size)."""
    series = {m: (list(range(len(h))), h) for m, h in history.items()}
    return charts.curves(series, title=f"Online Elo after each vote (K = {k:g})", x="votes so far", y="Elo rating")
