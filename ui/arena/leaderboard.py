"""The 🏆 Leaderboard tab of the arena page: the rating settings (ties, Elo K, bootstrap rounds, provisional threshold)
and the board itself: Bradley–Terry ratings with bootstrap intervals, online Elo, and the pair matrices."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from labs import arena
from labs.core import charts


def board_settings() -> bool:
    """How ties count, Elo K, bootstrap rounds, the provisional threshold; returns whether the board is live."""
    c1, c2, c3, c4 = st.columns(4)
    c1.radio("Ties and both-bad", ["half", "exclude"], key="arena_ties", horizontal=True,
             format_func=lambda t: {"half": "count as ½ win each", "exclude": "leave out"}[t],
             help="A tie can count as half a win for each side, or be dropped from the ratings.")
    c2.select_slider("Elo K", [4, 8, 16, 32, 64], value=16, key="arena_k",
                     help="How far one vote moves online Elo. Large K chases recent votes; online Elo also depends on "
                          "the order of the votes (see the range over shuffled orders). Bradley–Terry does not.")
    c3.select_slider("Bootstrap rounds", [50, 100, 200, 500], value=100, key="arena_boot",
                     help="How many times the votes are resampled to get the 95% interval. More = steadier intervals.")
    c4.number_input("Provisional below (votes)", 1, 100, 10, key="arena_provisional",
                    help="Models with fewer votes than this are flagged: their interval is wide and the rank shaky.")
    return st.toggle("Live: refresh every 5 s while the class votes", key="arena_live", value=False)


@st.cache_data(show_spinner=False, max_entries=16)
def _board(battles: tuple, ties: str, k: float, n_boot: int, provisional: int):
    rows = [dict(model_a=a, model_b=b, outcome=o) for a, b, o in battles]
    return (arena.leaderboard(rows, ties=ties, k=k, n_boot=n_boot, provisional_below=provisional),
            arena.pair_matrices(rows, ties), arena.elo_history(rows, k, ties))


def draw_board(store) -> None:
    rows = store.votes()
    st.caption(f"{len(rows)} blind votes from {store.voters()} voters on board #{store.board()}"
               + ("" if store.voting_open() else " · **voting is closed**"))
    if not rows:
        st.info("No votes yet. Battle and vote in the ⚔️ Battle tab; the ratings appear here.")
        return
    battles = tuple((r["model_a"], r["model_b"], r["outcome"]) for r in rows)
    table, (names, rate, games), history = _board(battles, st.session_state.arena_ties, float(st.session_state.arena_k),
                                                  st.session_state.arena_boot, st.session_state.arena_provisional)
    df = pd.DataFrame([{
        "Rank (UB)": r.rank_ub, "Model": r.model + (" ⚠️ provisional" if r.provisional else ""),
        "Bradley–Terry": round(r.rating), "95% CI": f"+{r.upper - r.rating:.0f} / −{r.rating - r.lower:.0f}",
        "Elo (vote order)": round(r.elo), "Elo over shuffled orders": f"{r.elo_low:.0f} – {r.elo_high:.0f}",
        "Votes": r.votes, "W / L / T": f"{r.wins} / {r.losses} / {r.ties}"} for r in table])
    st.dataframe(df, hide_index=True, key="arena_table")
    st.plotly_chart(arena.ratings_figure(table), key="arena_ci_chart")
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.heatmap(rate, names, names, title="Win rate of row vs column", zmin=0, zmax=1,
                                   colorscale="RdBu", x="opponent", y="model"), key="arena_winrate")
    c2.plotly_chart(charts.heatmap(games, names, names, title="Battles between each pair", colorscale="Blues",
                                   x="opponent", y="model", text_fmt=".0f"), key="arena_counts")
    st.plotly_chart(arena.elo_history_figure(history, st.session_state.arena_k), key="arena_elo_history")
