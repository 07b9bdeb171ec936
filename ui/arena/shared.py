"""Who is here, for every tab of the arena page: this browser's address (the burst limit and the instructor's log), the
shared vote store, the instructor password, joining once per browser session (the voter panel drawn in the ⚔️ Battle
tab) and restoring a tab whose session was replaced."""
from __future__ import annotations

import streamlit as st

import ui
from labs import arena
from labs.arena import votes
from labs.core import settings


def client() -> str:
    """This browser's address, for the burst limit and the instructor's log."""
    try:
        headers = {k: v for k, v in st.context.headers.items()}
    except Exception:  # noqa: BLE001 - no request headers (tests, old clients)
        headers = {}
    return arena.client_address(st.context.ip_address, headers)


def open_store() -> votes.VoteStore:
    """The shared vote store; a store that cannot be opened is a message and the page stops there."""
    try:
        return votes.open_store()
    except Exception as exc:  # noqa: BLE001 - a wrong LLMLAB_DB_URL or a server that is down
        st.error(f"The vote store could not be opened ({type(exc).__name__}: {exc}). Check LLMLAB_DB_URL "
                 f"(now {votes.safe_url(settings.db_url())}) or unset it to use SQLite under LLMLAB_HOME.")
        st.stop()


def secret_password() -> str | None:
    try:
        return st.secrets.get("arena_password")
    except Exception:  # noqa: BLE001 - no secrets.toml at all
        return None


def who(client_address: str) -> str:
    """How the instructor's log names whoever acted here."""
    name = st.session_state.arena_voter_name
    return f"{name or 'instructor'} · {client_address} · session {ui.session_id()[:6]}"


def _join(store, password_set: bool, code_given: str, name: str) -> None:
    """Join the arena once per browser session: the room's join code (when the class has a password) + a name."""
    if password_set and not store.join_code_ok(code_given):
        raise votes.VoteRejected("That join code is not this room's code: open the join link (or scan the QR code) "
                                 "on the instructor's screen, or type the code shown there.")
    st.session_state.arena_voter = votes.voter_key(name)
    st.session_state.arena_voter_name = " ".join(name.split())


def _on_join(store, password_set: bool, link_code: str) -> None:
    """The Join button's callback. Callbacks run before the script, so a rerun that a finishing battle asks for
    in the same run (live_answers) cannot drop the click, as a button read in the script body could."""
    code = link_code
    if password_set and not store.join_code_ok(link_code):
        code = st.session_state.get("arena_code", "")
    try:
        _join(store, password_set, code, st.session_state.get("arena_name", ""))
        st.session_state.arena_join_error = None
        st.query_params["voter"] = st.session_state.arena_voter_name  # a new session of this tab joins again
    except votes.VoteRejected as exc:
        st.session_state.arena_join_error = str(exc)


def restore(store, password_set: bool) -> None:
    """A tab whose session was replaced (a reconnect after the server forgot it, a reload) keeps its name and its
    battle: both are in the tab's address (?voter=…&battle=…) once set."""
    name = st.query_params.get("voter", "")
    if not st.session_state.arena_voter and name:
        try:
            _join(store, password_set, st.query_params.get("code", ""), name)
        except votes.VoteRejected:
            pass  # a new join code since: the form asks again
    battle_id = st.query_params.get("battle", "")
    if st.session_state.arena_battle_id is None and battle_id and arena.get_battle(battle_id) is not None:
        st.session_state.arena_battle_id = battle_id


def voter_panel(store, password_set: bool) -> None:
    """Who is voting in this browser: asked once per session, then fixed (a new name is a new browser session)."""
    if st.session_state.arena_voter:
        st.caption(f"Voting as **{st.session_state.arena_voter_name}**. Your votes count under this name on every "
                   "device; the per-voter cap counts them together.")
        return
    link_code = st.query_params.get("code", "")
    with st.form("arena_join_form", border=True):
        st.markdown("**Join the vote:** your name or student id, once per browser. One person, one voice: the same "
                    "name in another browser shares your votes and your cap.")
        c1, c2 = st.columns([2, 1])
        c1.text_input("Name or student id", key="arena_name", max_chars=votes.MAX_VOTER_CHARS,
                      help="How your votes are counted. The instructor sees votes per name.")
        if password_set and not store.join_code_ok(link_code):
            c2.text_input("Join code", key="arena_code", max_chars=12,
                                 help="The code on the instructor's screen (the join link carries it already).")
        st.form_submit_button("Join", type="primary", on_click=_on_join, args=(store, password_set, link_code))
    if st.session_state.get("arena_join_error"):
        st.error(st.session_state.arena_join_error)
