"""Widgets and drawing for the arena page: who votes (join code + name), the battle controls, the live answers,
the vote buttons, the leaderboard, the exports and the instructor's classroom controls.

The lesson (pair drawing, Elo, Bradley–Terry, bootstrap) lives in labs/arena/__init__.py; votes, class settings and the
instructor's log live in labs/arena/votes.py. These helpers collect widgets and draw what those return.
"""
from __future__ import annotations

import random
import time

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

import ui
from labs import arena
from labs.core import charts
from labs import models
from labs.core import settings
from labs.arena import votes

P = "arena"
SET_PASSWORD_HOWTO = (
    "No instructor password is set, so the instructor controls stay locked and anyone can download the votes. "
    "To set one: create the file `.streamlit/secrets.toml` in the folder you start the app from (the repo root for "
    "`make run`) with the line\n\n```toml\narena_password = \"a long passphrase only you know\"\n```\n\nthen restart "
    "the app (Ctrl+C, `make run`). The file is git-ignored; never commit it.")
OUTCOME_LABELS = {"a": "A is better", "b": "B is better", "tie": "Tie", "bothbad": "Both are bad"}


# -- who is here ------------------------------------------------------------------------------------------------------
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


def when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


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


# -- battle -----------------------------------------------------------------------------------------------------------
def contenders() -> dict[str, arena.Contender]:
    """The installed contenders by name; the draw's selection is initialised once and pruned of deleted adapters."""
    by_name = {c.name: c for c in arena.contenders() if models.installed(c.model_key)}
    if st.session_state.arena_contenders is None:
        st.session_state.arena_contenders = list(by_name)
    else:  # an adapter may have been deleted since
        st.session_state.arena_contenders = [n for n in st.session_state.arena_contenders if n in by_name]
    return by_name


def _use_bank_prompt() -> None:
    choice = st.session_state.arena_bank
    if choice:
        st.session_state.arena_prompt = choice.split(" · ", 1)[1]
        st.session_state.arena_prompt_source = "bank"


def _random_prompt() -> None:
    st.session_state.arena_prompt = random.choice(arena.prompt_bank())["prompt"]
    st.session_state.arena_prompt_source = "bank"


def _new_round() -> None:
    old = arena.get_battle(st.session_state.arena_battle_id)
    if old is not None:
        old.stop()
    st.session_state.arena_battle_id = None
    st.query_params.pop("battle", None)  # restore() must not bring the old round back
    st.session_state.arena_prompt = ""
    st.session_state.arena_bank = ""
    st.session_state.arena_message = None


def start(prompt: str, a: arena.Contender, b: arena.Contender, *, swapped: bool, blind: bool) -> None:
    """Stop this session's unfinished battle and start a new one (both answers decode at once)."""
    old = arena.get_battle(st.session_state.arena_battle_id)
    if old is not None and not old.finished:
        old.stop()
    source = st.session_state.arena_prompt_source if prompt == st.session_state.arena_prompt.strip() else "typed"
    battle = arena.start_battle(prompt, a, b, ui.cached_target, max_new_tokens=st.session_state.arena_max_tokens,
                                swapped=swapped, prompt_source=source, blind=blind)
    st.session_state.arena_battle_id = battle.id
    st.session_state.arena_message = None
    st.query_params["battle"] = battle.id  # a replaced session of this tab finds its battle again (restore)


def battle_settings(by_name: dict[str, arena.Contender]) -> None:
    with st.expander("Battle settings", expanded=False):
        st.multiselect("Contenders in the draw", list(by_name), key="arena_contenders",
                       help="Models and decoding variants that can be drawn. Saved adapters from the SFT, preference "
                            "and LoRA pages appear here automatically. Pairs are drawn fewest-votes-first.")
        for name in st.session_state.arena_contenders:
            if name in by_name:
                st.caption(f"**{name}**: {by_name[name].description}")
        top = settings.new_tokens_slider_max(256)
        st.slider("Answer length (tokens)", 16, top, min(64 if settings.is_cpu() else 192, top), step=16,
                  key="arena_max_tokens",
                  help="Maximum new tokens per answer. Two answers share the CPU, so short answers keep battles quick."
                       + (f" This server caps answers at {top} tokens." if top < 256 else ""))
        st.toggle("Pick the two contenders myself (named battle)", key="arena_named", value=False,
                  help="For exploring. You see the names while voting, so the vote is stored but does not count "
                       "on the leaderboard: only blind votes count.")
        if st.session_state.arena_named:
            names = list(by_name)
            c1, c2 = st.columns(2)
            c1.selectbox("Model A", names, index=0, key="arena_pick_a", help="Shown on the left.")
            c2.selectbox("Model B", names, index=min(1, len(names) - 1), key="arena_pick_b", help="Shown on the right.")


def prompt_box() -> None:
    st.selectbox("Prompt bank", [""] + [f"{p['category']} · {p['prompt']}" for p in arena.prompt_bank()],
                 key="arena_bank", on_change=_use_bank_prompt,
                 format_func=lambda s: s or "Pick a prompt written for the arena…",
                 help="Prompts written for this project (assets/arena/prompts.jsonl). Or type your own below.")
    st.text_area("Your prompt", key="arena_prompt", height=90, max_chars=votes.MAX_PROMPT_CHARS,
                 placeholder="Ask anything, e.g. 'Explain why the sky is blue in two sentences.'",
                 help="Both models answer this same prompt. HTML and Markdown are shown as plain text.")


def battle_buttons(battle: arena.Battle | None, running: bool) -> tuple[bool, bool]:
    """Battle!, Random prompt, Regenerate, New round; returns (battle pressed, regenerate pressed)."""
    b1, b2, b3, b4 = st.columns([2, 1, 1, 1])
    go = b1.button("⚔️ Battle!", key="arena_go", type="primary", disabled=running, use_container_width=True,
                   help="Draw two contenders and let both answer at once.")
    b2.button("🎲 Random prompt", key="arena_random", on_click=_random_prompt, use_container_width=True,
              help="Fill in a random prompt from the bank.")
    regen = b3.button("🔄 Regenerate", key="arena_regen", disabled=battle is None or running, use_container_width=True,
                      help="Same two contenders, same places, fresh answers (a new sampling seed). No vote is cast.")
    b4.button("🆕 New round", key="arena_new", on_click=_new_round, use_container_width=True,
              help="Clear the prompt and the answers; the next battle draws a new pair.")
    return go, regen


def draw_answers(b: arena.Battle) -> None:
    snap = b.snapshot()
    revealed = b.outcome is not None or not b.blind
    cols = st.columns(2)
    for col, side in zip(cols, ("a", "b")):
        ans = snap[side]
        with col.container(border=True):
            st.markdown(f"**Model {side.upper()}**" + (f" · {ans['name']}" if revealed else ""))
            if ans["error"]:
                st.error(f"This answer failed: {ans['error']}")
            st.text(ans["text"] + ("" if ans["done"] else " ▌") if ans["text"] or ans["done"] else "…")
            if ans["done"] and ans["seconds"] is not None:
                st.caption(f"finished in {ans['seconds']:.1f} s · {ans['pieces']} pieces"
                           + (f" · decoded by: {ans['runtime']}" if revealed and ans["runtime"] else ""))
            elif ans["queue_position"]:
                st.caption(f"⏳ the model is serving a full class: place {ans['queue_position']} in the queue")
            else:
                st.caption("writing…")


def retry(battle: arena.Battle) -> None:
    """Stop a failed or stuck battle and ask the same two contenders again, in the same places."""
    start(battle.prompt, battle.a.contender, battle.b.contender, swapped=battle.swapped, blind=battle.blind)


def trouble(b: arena.Battle) -> None:
    """A failed or stuck battle says why and offers Retry (never a silent wait)."""
    reason = b.stalled() if not b.finished else ("One answer failed (its reason is shown above it)." if b.failed
                                                 else None)
    if reason is None:
        return
    st.warning(reason)
    if st.button("🔁 Retry", key="arena_retry", help="Stop this battle and let the same two models answer again."):
        with ui.friendly_errors("Retrying"):
            retry(b)
            st.rerun(scope="app")


@st.fragment(run_every=0.5)
def live_answers(battle_id: str) -> None:
    b = arena.get_battle(battle_id)
    if b is None:
        return
    draw_answers(b)
    trouble(b)
    ctx = get_script_run_ctx()
    if b.finished and ctx is not None and ctx.fragment_ids_this_run:
        # a rerun of this fragment alone: one full rerun unlocks the vote buttons. Inside a full run (the fragment
        # drawn inline) the rest of the page is still to come and reads the finished battle itself; a rerun
        # here would throw away what the student clicked in this run.
        st.rerun()


def answers(battle: arena.Battle | None, running: bool) -> None:
    """The two answers: live (refreshed twice a second) while they are written, then fixed."""
    if battle is not None:
        st.caption(f"Prompt: {battle.prompt[:300]}" + ("…" if len(battle.prompt) > 300 else ""))
        if running:
            live_answers(battle.id)
        else:
            draw_answers(battle)
            trouble(battle)
    elif st.session_state.arena_battle_id:
        st.warning("That battle has expired (the server restarted or it is too old). Start a new round.")


def vote_buttons(can_vote: bool) -> str | None:
    """The four vote buttons; the outcome clicked, if any."""
    v1, v2, v3, v4 = st.columns(4)
    clicks = {
        "a": v1.button("👈 A is better", key="arena_vote_a", disabled=not can_vote, use_container_width=True,
                       help="The left answer is better."),
        "b": v2.button("👉 B is better", key="arena_vote_b", disabled=not can_vote, use_container_width=True,
                       help="The right answer is better."),
        "tie": v3.button("🤝 Tie", key="arena_vote_tie", disabled=not can_vote, use_container_width=True,
                         help="Both are about equally good."),
        "bothbad": v4.button("👎 Both are bad", key="arena_vote_bothbad", disabled=not can_vote,
                             use_container_width=True, help="Neither answer is acceptable (counted like a tie)."),
    }
    return next((o for o, clicked in clicks.items() if clicked), None)


def after_vote(battle: arena.Battle | None, voted: bool, running: bool) -> None:
    """The stored message, the revealed names after a vote, or what to do next."""
    if st.session_state.arena_message:
        kind, text = st.session_state.arena_message
        getattr(st, kind)(text)
    if voted:
        st.info(f"You voted **{OUTCOME_LABELS[battle.outcome]}**. Model A was **{battle.a.contender.name}**, Model B "
                f"was **{battle.b.contender.name}**." + ("" if battle.blind else " (Named battle: not on the "
                                                                                 "leaderboard.)"))
    elif battle is None:
        st.caption("Type or pick a prompt and press **Battle!** The vote buttons unlock when both answers are finished.")
    elif running:
        st.caption("The vote buttons unlock when both answers are finished.")


# -- leaderboard ------------------------------------------------------------------------------------------------------
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


# -- votes and exports ------------------------------------------------------------------------------------------------
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


# -- classroom --------------------------------------------------------------------------------------------------------
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
    """The instructor password box; a refused try is logged and rate-limited (labs.arena.instructor_gate)."""
    pw = st.text_input("Instructor password", type="password", key="arena_pw",
                       help="arena_password in .streamlit/secrets.toml. Students cannot open these controls.")
    if st.button("Unlock", key="arena_unlock"):
        ok, msg = arena.instructor_gate.check(client_address, pw, secret_password())
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
