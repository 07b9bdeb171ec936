"""The 🧑‍🏫 Classroom tab of the arena page: the join link and QR code with a live vote counter, the instructor
password box, the class switches (voting, cap, reset, URL loading, join code), votes per voter and the instructor's
log."""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from labs import arena
from labs.core import settings
from ui.arena.shared import secret_password, who


SET_PASSWORD_HOWTO = (
    "No instructor password is set, so the instructor controls stay locked and anyone can download the votes. "
    "To set one: create the file `.streamlit/secrets.toml` in the folder you start the app from (the repo root for "
    "`make run`) with the line\n\n```toml\narena_password = \"a long passphrase only you know\"\n```\n\nthen restart "
    "the app (Ctrl+C, `make run`). The file is git-ignored; never commit it.")


def when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


def join_panel(store, password_set: bool) -> None:
    """The join link and QR code (with the room's code when the class has a password) and a live vote counter."""
    url = arena.join_url(st.context.url, st.get_option("server.port") or 8501,
                         code=store.join_code() if password_set else None)
    c1, c2 = st.columns([1, 2])
    c1.image(arena.qr_png(url), caption="Scan to join")
    c2.markdown(f"**Join the arena:** `{url}`")
    if password_set:
        c2.markdown(f"Join code: **`{store.join_code()}`** (the link and the QR code carry it)")
    c2.caption("Everyone on the same network opens this address, gives a name or student id once, and votes from "
               "their own browser. The per-voter cap and the voter count go by that name.")

    @st.fragment(run_every=3)
    def counter() -> None:
        cols = st.columns(3)
        cols[0].metric("Votes on this board", store.count())
        cols[1].metric("Voters", store.voters())
        cols[2].metric("Voting", "open" if store.voting_open() else "closed")

    with c2:
        counter()


def unlock(store, client_address: str) -> None:
    """The instructor password box; a refused try is logged and rate-limited (labs.arena.classroom.instructor_gate)."""
    pw = st.text_input("Instructor password", type="password", key="arena_pw",
                       help="arena_password in .streamlit/secrets.toml. Students cannot open these controls.")
    if st.button("Unlock", key="arena_unlock"):
        ok, msg = arena.classroom.instructor_gate.check(client_address, pw, secret_password())
        store.log_action(who(client_address), "unlock" if ok else "unlock refused", "" if ok else msg)
        if ok:
            st.session_state.arena_instructor = True
            st.rerun()
        st.error(msg)


def class_switches(store, by: str) -> None:
    """Voting open/closed, the per-voter cap, reset the board, URL loading for the class, a new join code."""
    c1, c2, c3 = st.columns(3)
    is_open = store.voting_open()
    if c1.button("Close voting" if is_open else "Open voting", key="arena_toggle_open",
                 help="Closed: battles still run, but votes are refused until you open voting again."):
        store.set_voting_open(not is_open, by=by)
        st.rerun()
    cap = c2.number_input("Per-voter cap (0 = none)", 0, 1000, store.voter_cap(), key="arena_cap",
                          help="The most blind votes one voter (one name) may cast on this board.")
    if cap != store.voter_cap():
        store.set_voter_cap(int(cap), by=by)
    sure = c3.checkbox("I am sure", key="arena_reset_sure", help="Resetting starts an empty board.")
    if c3.button("Reset the board", key="arena_reset", disabled=not sure,
                 help="Start an empty leaderboard. Old votes stay in the database and in the exports."):
        st.success(f"Board #{store.reset_board(by=by)} started.")
    c1, c2 = st.columns(2)
    url_on = store.url_loading()
    if c1.button("Turn URL loading off for the class" if url_on else "Turn URL loading on for the class",
                 key="arena_url_toggle",
                 help="The RAG page's URL loader makes this server fetch pages. Off: nobody can fetch a URL "
                      "(uploads still work). LLMLAB_URL_LOADING=off turns it off for good."):
        store.set_url_loading(not url_on, by=by)
        st.rerun()
    c1.caption("URL loading: " + ("on" if url_on and settings.url_loading() else
                                  "off (LLMLAB_URL_LOADING=off)" if not settings.url_loading() else "off"))
    if c2.button("New join code", key="arena_new_code",
                 help="The old link and code stop working for anyone who has not joined yet."):
        store.new_join_code(by=by)
        st.rerun()


def votes_per_voter(store, by: str) -> None:
    """Votes per voter, most first, and removing one voter's votes from this board."""
    st.markdown("**Votes per voter** on this board (most first): a name with far more votes than the rest may "
                "be stuffing.")
    per_voter = store.votes_per_voter()
    if not per_voter:
        st.caption("No votes on this board yet.")
        return
    st.dataframe(pd.DataFrame([{"voter": r["voter"], "votes": r["votes"], "blind": r["blind"],
                                "first vote": when(r["first"]), "last vote": when(r["last"])}
                               for r in per_voter]),
                 hide_index=True, key="arena_per_voter")
    c1, c2 = st.columns([2, 1])
    target = c1.selectbox("Voter", [r["voter"] for r in per_voter], key="arena_remove_who",
                          help="Their votes on this board leave the leaderboard and the exports (they are "
                               "kept aside in the database, with your name and the time).")
    sure_remove = c2.checkbox("I am sure", key="arena_remove_sure")
    if c2.button("Remove this voter's votes", key="arena_remove", disabled=not sure_remove):
        n = store.remove_voter(target, by=by)
        st.success(f"Removed {n} votes of '{target}' from board #{store.board()}.")


def action_log(store) -> None:
    st.markdown("**Instructor actions** (who, when), newest first: unlocks, voting open/closed, caps, resets, "
                "removed voters, join codes, URL loading, exports.")
    actions = store.actions(30)
    if actions:
        st.dataframe(pd.DataFrame([{"when": when(a["at"]), "who": a["who"], "action": a["action"],
                                    "detail": a["detail"]} for a in actions]), hide_index=True, key="arena_actions")
    else:
        st.caption("None yet.")
