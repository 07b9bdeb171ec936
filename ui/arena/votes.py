"""The 🗳️ Votes tab of the arena page: the latest votes on this board and the exports (votes as CSV / JSONL and
preference pairs), which the 🧑‍🏫 Classroom tab's instructor panel offers too."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from labs.arena import votes
from ui.arena.shared import who


def recent_votes(store) -> None:
    recent = store.votes(blind_only=False)[-15:][::-1]
    if recent:
        st.dataframe(pd.DataFrame([{"prompt": r["prompt"][:80], "A": r["model_a"], "B": r["model_b"],
                                    "outcome": r["outcome"], "blind": r["blind"],
                                    "A s": round(r["latency_a_s"] or 0, 1), "B s": round(r["latency_b_s"] or 0, 1)}
                                   for r in recent]), hide_index=True, key="arena_recent")
    else:
        st.caption("No votes on this board yet.")


def draw_exports(store, where: str, client_address: str) -> None:
    """Votes (CSV, JSONL) and preference pairs; every download goes into the instructor's log."""
    def log_export(what: str) -> None:
        store.log_action(who(client_address) if st.session_state.arena_instructor
                         else f"anyone (no password) · {client_address}", "export", what)

    rows_all = store.votes(all_boards=True, blind_only=False)
    pairs = votes.export_preference_pairs(store)
    c1, c2, c3 = st.columns(3)
    c1.download_button("Votes (CSV)", votes.to_csv(rows_all), "arena-votes.csv", key=f"arena_dl_csv_{where}",
                       help="Every vote on every board, blind and named.", on_click=log_export, args=("votes CSV",))
    c2.download_button("Votes (JSONL)", votes.to_jsonl(rows_all), "arena-votes.jsonl", key=f"arena_dl_jsonl_{where}",
                       on_click=log_export, args=("votes JSONL",))
    c3.download_button(f"Preference pairs ({len(pairs)})", votes.to_jsonl(pairs), "arena-preferences.jsonl",
                       key=f"arena_dl_pairs_{where}", on_click=log_export, args=("preference pairs",),
                       help="prompt / chosen / rejected from decisive blind votes: data for the preference (DPO) page.")
