"""Two anonymous models answer the same prompt, the class votes, and Elo / Bradley–Terry rank them with 95% intervals."""
from __future__ import annotations

import random
import time

import pandas as pd
import streamlit as st

import ui
from labs import arena, charts, models, settings, votes

ICON = "⚔️"

ui.page_header(
    "Arena",
    "How do you rank chatbots when there is no answer key? Ask people. As in **Chatbot Arena**, two anonymous "
    "models answer the same prompt side by side; you vote for the better answer without knowing who wrote it, "
    "and only then see the names. Each vote is one noisy comparison. The **Bradley–Terry** model turns many "
    "of them into one rating per model (400 points = 10:1 odds of winning), and resampling the votes "
    "(the **bootstrap**) says how sure we are. Vote from several browsers at once: the leaderboard is shared.",
    ICON,
)
ui.init_state("arena", battle_id=None, prompt="", prompt_source="typed", message=None, instructor=False,
              contenders=None, voter=None, voter_name=None)
me = ui.session_id()
try:
    _headers = {k: v for k, v in st.context.headers.items()}
except Exception:  # noqa: BLE001 - no request headers (tests, old clients)
    _headers = {}
client = arena.client_address(st.context.ip_address, _headers)  # for the burst limit and the instructor's log
try:
    store = votes.open_store()
except Exception as exc:  # noqa: BLE001 - a wrong LLMLAB_DB_URL or a server that is down
    st.error(f"The vote store could not be opened ({type(exc).__name__}: {exc}). Check LLMLAB_DB_URL "
             f"(now {votes.safe_url(settings.db_url())}) or unset it to use SQLite under LLMLAB_HOME.")
    st.stop()


def _secret_password() -> str | None:
    try:
        return st.secrets.get("arena_password")
    except Exception:  # noqa: BLE001 - no secrets.toml at all
        return None


password_set = bool(_secret_password())
SET_PASSWORD_HOWTO = (
    "No instructor password is set, so the instructor controls stay locked and anyone can download the votes. "
    "To set one: create the file `.streamlit/secrets.toml` in the folder you start the app from (the repo root for "
    "`make run`) with the line\n\n```toml\narena_password = \"a long passphrase only you know\"\n```\n\nthen restart "
    "the app (Ctrl+C, `make run`). The file is git-ignored; never commit it.")


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


def _who() -> str:
    """How the instructor's log names whoever acted here."""
    name = st.session_state.arena_voter_name
    return f"{name or 'instructor'} · {client} · session {me[:6]}"


def _join(code_given: str, name: str) -> None:
    """Join the arena once per browser session: the room's join code (when the class has a password) + a name."""
    if password_set and not store.join_code_ok(code_given):
        raise votes.VoteRejected("That join code is not this room's code: open the join link (or scan the QR code) "
                                 "on the instructor's screen, or type the code shown there.")
    st.session_state.arena_voter = votes.voter_key(name)
    st.session_state.arena_voter_name = " ".join(name.split())


def voter_panel() -> None:
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
        name = c1.text_input("Name or student id", key="arena_name", max_chars=votes.MAX_VOTER_CHARS,
                             help="How your votes are counted. The instructor sees votes per name.")
        code = link_code
        if password_set and not store.join_code_ok(link_code):
            code = c2.text_input("Join code", key="arena_code", max_chars=12,
                                 help="The code on the instructor's screen (the join link carries it already).")
        if st.form_submit_button("Join", type="primary"):
            try:
                _join(code, name)
                st.rerun()
            except votes.VoteRejected as exc:
                st.error(str(exc))


all_contenders = [c for c in arena.contenders() if models.installed(c.model_key)]
by_name = {c.name: c for c in all_contenders}
if st.session_state.arena_contenders is None:
    st.session_state.arena_contenders = [c.name for c in all_contenders]
else:  # an adapter may have been deleted since
    st.session_state.arena_contenders = [n for n in st.session_state.arena_contenders if n in by_name]

tab_battle, tab_board, tab_votes, tab_class = st.tabs(["⚔️ Battle", "🏆 Leaderboard", "🗳️ Votes", "🧑‍🏫 Classroom"])

# ---------------------------------------------------------------------------------------------------------
# Battle
# ---------------------------------------------------------------------------------------------------------
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
    st.session_state.arena_prompt = ""
    st.session_state.arena_bank = ""
    st.session_state.arena_message = None


def _start(prompt: str, a: arena.Contender, b: arena.Contender, *, swapped: bool, blind: bool) -> None:
    old = arena.get_battle(st.session_state.arena_battle_id)
    if old is not None and not old.finished:
        old.stop()
    source = st.session_state.arena_prompt_source if prompt == st.session_state.arena_prompt.strip() else "typed"
    battle = arena.start_battle(prompt, a, b, ui.cached_target, max_new_tokens=st.session_state.arena_max_tokens,
                                swapped=swapped, prompt_source=source, blind=blind)
    st.session_state.arena_battle_id = battle.id
    st.session_state.arena_message = None


with tab_battle:
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

    st.selectbox("Prompt bank", [""] + [f"{p['category']} · {p['prompt']}" for p in arena.prompt_bank()],
                 key="arena_bank", on_change=_use_bank_prompt, format_func=lambda s: s or "Pick a prompt written for the arena…",
                 help="Prompts written for this project (assets/arena/prompts.jsonl). Or type your own below.")
    st.text_area("Your prompt", key="arena_prompt", height=90, max_chars=votes.MAX_PROMPT_CHARS,
                 placeholder="Ask anything, e.g. 'Explain why the sky is blue in two sentences.'",
                 help="Both models answer this same prompt. HTML and Markdown are shown as plain text.")

    battle = arena.get_battle(st.session_state.arena_battle_id)
    running = battle is not None and not battle.finished
    b1, b2, b3, b4 = st.columns([2, 1, 1, 1])
    go = b1.button("⚔️ Battle!", key="arena_go", type="primary", disabled=running, use_container_width=True,
                   help="Draw two contenders and let both answer at once.")
    b2.button("🎲 Random prompt", key="arena_random", on_click=_random_prompt, use_container_width=True,
                    help="Fill in a random prompt from the bank.")
    regen = b3.button("🔄 Regenerate", key="arena_regen", disabled=battle is None or running, use_container_width=True,
                      help="Same two contenders, same places, fresh answers (a new sampling seed). No vote is cast.")
    b4.button("🆕 New round", key="arena_new", on_click=_new_round, use_container_width=True,
                    help="Clear the prompt and the answers; the next battle draws a new pair.")

    if go and not running:
        with ui.friendly_errors("The battle"):
            prompt = arena.check_prompt(st.session_state.arena_prompt)
            if st.session_state.get("arena_named"):
                a, b = by_name.get(st.session_state.arena_pick_a), by_name.get(st.session_state.arena_pick_b)
                if a is None or b is None or a.name == b.name:
                    raise ValueError("Pick two different contenders for a named battle.")
                _start(prompt, a, b, swapped=False, blind=False)
            else:
                pool = [n for n in st.session_state.arena_contenders if n in by_name]
                per_model, per_pair = arena.counts_from(store.votes())
                a, b, swapped = arena.draw_pair(pool, per_model, random.Random(), per_pair)
                _start(prompt, by_name[a], by_name[b], swapped=swapped, blind=True)
            st.rerun()
    if regen and battle is not None and not running:
        with ui.friendly_errors("Regenerating"):
            _start(battle.prompt, battle.a.contender, battle.b.contender, swapped=battle.swapped, blind=battle.blind)
            st.rerun()

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
                    st.caption(f"finished in {ans['seconds']:.1f} s · {ans['pieces']} pieces")
                else:
                    st.caption("writing…")

    @st.fragment(run_every=0.5)
    def live_answers(battle_id: str) -> None:
        b = arena.get_battle(battle_id)
        if b is None:
            return
        draw_answers(b)
        if b.finished:
            st.rerun()  # one full rerun: the vote buttons unlock

    if battle is not None:
        st.caption(f"Prompt: {battle.prompt[:300]}" + ("…" if len(battle.prompt) > 300 else ""))
        if running:
            live_answers(battle.id)
        else:
            draw_answers(battle)
    elif st.session_state.arena_battle_id:
        st.warning("That battle has expired (the server restarted or it is too old). Start a new round.")

    voted = battle is not None and battle.outcome is not None
    voter_panel()
    can_vote = (battle is not None and battle.finished and not voted and not battle.failed
                and bool(st.session_state.arena_voter))
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
    outcome = next((o for o, clicked in clicks.items() if clicked), None)
    if outcome is not None:
        current = arena.get_battle(st.session_state.arena_battle_id)
        if current is None:
            st.warning("That battle has expired: start a new round.")
        else:
            try:
                current.vote(store, st.session_state.arena_voter, outcome, client=client)
                st.session_state.arena_message = ("success", "Thanks, your vote is stored. The names are revealed above.")
                st.rerun()
            except votes.VoteRejected as exc:
                st.warning(str(exc))
    if st.session_state.arena_message:
        kind, text = st.session_state.arena_message
        getattr(st, kind)(text)
    if voted:
        label = {"a": "A is better", "b": "B is better", "tie": "Tie", "bothbad": "Both are bad"}[battle.outcome]
        st.info(f"You voted **{label}**. Model A was **{battle.a.contender.name}**, Model B was "
                f"**{battle.b.contender.name}**." + ("" if battle.blind else " (Named battle: not on the leaderboard.)"))
    elif battle is None:
        st.caption("Type or pick a prompt and press **Battle!** The vote buttons unlock when both answers are finished.")
    elif running:
        st.caption("The vote buttons unlock when both answers are finished.")

# ---------------------------------------------------------------------------------------------------------
# Leaderboard
# ---------------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=16)
def _board(battles: tuple, ties: str, k: float, n_boot: int, provisional: int):
    rows = [dict(model_a=a, model_b=b, outcome=o) for a, b, o in battles]
    return (arena.leaderboard(rows, ties=ties, k=k, n_boot=n_boot, provisional_below=provisional),
            arena.pair_matrices(rows, ties), arena.elo_history(rows, k, ties))


def draw_board() -> None:
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


with tab_board:
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
    live = st.toggle("Live: refresh every 5 s while the class votes", key="arena_live", value=False)
    if live:
        st.fragment(run_every=5)(draw_board)()
    else:
        draw_board()
    st.caption("Bradley–Terry uses a weak Gaussian prior (σ = 400 points) so a model with only wins or only losses "
               "still gets a finite rating; with many votes the prior no longer matters. Ratings are anchored at a "
               "mean of 1000.")

# ---------------------------------------------------------------------------------------------------------
# Votes and exports
# ---------------------------------------------------------------------------------------------------------
may_export = st.session_state.arena_instructor or not password_set


def _log_export(what: str) -> None:
    store.log_action(_who() if st.session_state.arena_instructor else f"anyone (no password) · {client}",
                     "export", what)


def draw_exports(where: str) -> None:
    rows_all = store.votes(all_boards=True, blind_only=False)
    pairs = votes.export_preference_pairs(store)
    c1, c2, c3 = st.columns(3)
    c1.download_button("Votes (CSV)", votes.to_csv(rows_all), "arena-votes.csv", key=f"arena_dl_csv_{where}",
                       help="Every vote on every board, blind and named.", on_click=_log_export, args=("votes CSV",))
    c2.download_button("Votes (JSONL)", votes.to_jsonl(rows_all), "arena-votes.jsonl", key=f"arena_dl_jsonl_{where}",
                       on_click=_log_export, args=("votes JSONL",))
    c3.download_button(f"Preference pairs ({len(pairs)})", votes.to_jsonl(pairs), "arena-preferences.jsonl",
                       key=f"arena_dl_pairs_{where}", on_click=_log_export, args=("preference pairs",),
                       help="prompt / chosen / rejected from decisive blind votes: data for the preference (DPO) page.")


with tab_votes:
    mine = store.count(voter_id=st.session_state.arena_voter) if st.session_state.arena_voter else 0
    st.metric("Your blind votes on this board", mine)
    recent = store.votes(blind_only=False)[-15:][::-1]
    if recent:
        st.dataframe(pd.DataFrame([{"prompt": r["prompt"][:80], "A": r["model_a"], "B": r["model_b"],
                                    "outcome": r["outcome"], "blind": r["blind"],
                                    "A s": round(r["latency_a_s"] or 0, 1), "B s": round(r["latency_b_s"] or 0, 1)}
                                   for r in recent]), hide_index=True, key="arena_recent")
    else:
        st.caption("No votes on this board yet.")
    if may_export:
        draw_exports("votes")
    else:
        st.caption("Exports are in the instructor panel (🧑‍🏫 Classroom).")

# ---------------------------------------------------------------------------------------------------------
# Classroom
# ---------------------------------------------------------------------------------------------------------
with tab_class:
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

    st.subheader("Instructor")
    if not password_set:
        st.warning(SET_PASSWORD_HOWTO)
    elif not st.session_state.arena_instructor:
        pw = st.text_input("Instructor password", type="password", key="arena_pw",
                           help="arena_password in .streamlit/secrets.toml. Students cannot open these controls.")
        if st.button("Unlock", key="arena_unlock"):
            ok, msg = arena.instructor_gate.check(client, pw, _secret_password())
            store.log_action(_who(), "unlock" if ok else "unlock refused", "" if ok else msg)
            if ok:
                st.session_state.arena_instructor = True
                st.rerun()
            st.error(msg)
    if st.session_state.arena_instructor and password_set:
        who = _who()
        c1, c2, c3 = st.columns(3)
        is_open = store.voting_open()
        if c1.button("Close voting" if is_open else "Open voting", key="arena_toggle_open",
                     help="Closed: battles still run, but votes are refused until you open voting again."):
            store.set_voting_open(not is_open, by=who)
            st.rerun()
        cap = c2.number_input("Per-voter cap (0 = none)", 0, 1000, store.voter_cap(), key="arena_cap",
                              help="The most blind votes one voter (one name) may cast on this board.")
        if cap != store.voter_cap():
            store.set_voter_cap(int(cap), by=who)
        sure = c3.checkbox("I am sure", key="arena_reset_sure", help="Resetting starts an empty board.")
        if c3.button("Reset the board", key="arena_reset", disabled=not sure,
                     help="Start an empty leaderboard. Old votes stay in the database and in the exports."):
            st.success(f"Board #{store.reset_board(by=who)} started.")
        c1, c2 = st.columns(2)
        url_on = store.url_loading()
        if c1.button("Turn URL loading off for the class" if url_on else "Turn URL loading on for the class",
                     key="arena_url_toggle",
                     help="The RAG page's URL loader makes this server fetch pages. Off: nobody can fetch a URL "
                          "(uploads still work). LLMLAB_URL_LOADING=off turns it off for good."):
            store.set_url_loading(not url_on, by=who)
            st.rerun()
        c1.caption("URL loading: " + ("on" if url_on and settings.url_loading() else
                                      "off (LLMLAB_URL_LOADING=off)" if not settings.url_loading() else "off"))
        if c2.button("New join code", key="arena_new_code",
                     help="The old link and code stop working for anyone who has not joined yet."):
            store.new_join_code(by=who)
            st.rerun()

        st.markdown("**Votes per voter** on this board (most first): a name with far more votes than the rest may "
                    "be stuffing.")
        per_voter = store.votes_per_voter()
        if per_voter:
            st.dataframe(pd.DataFrame([{"voter": r["voter"], "votes": r["votes"], "blind": r["blind"],
                                        "first vote": _when(r["first"]), "last vote": _when(r["last"])}
                                       for r in per_voter]),
                         hide_index=True, key="arena_per_voter")
            c1, c2 = st.columns([2, 1])
            target = c1.selectbox("Voter", [r["voter"] for r in per_voter], key="arena_remove_who",
                                  help="Their votes on this board leave the leaderboard and the exports (they are "
                                       "kept aside in the database, with your name and the time).")
            sure_remove = c2.checkbox("I am sure", key="arena_remove_sure")
            if c2.button("Remove this voter's votes", key="arena_remove", disabled=not sure_remove):
                n = store.remove_voter(target, by=who)
                st.success(f"Removed {n} votes of '{target}' from board #{store.board()}.")
        else:
            st.caption("No votes on this board yet.")
        draw_exports("instructor")
        if st.button("Lock instructor controls", key="arena_lock"):
            st.session_state.arena_instructor = False
            store.log_action(who, "lock")
            st.rerun()

    if st.session_state.arena_instructor or not password_set:
        st.markdown("**Instructor actions** (who, when), newest first: unlocks, voting open/closed, caps, resets, "
                    "removed voters, join codes, URL loading, exports.")
        actions = store.actions(30)
        if actions:
            st.dataframe(pd.DataFrame([{"when": _when(a["at"]), "who": a["who"], "action": a["action"],
                                        "detail": a["detail"]} for a in actions]), hide_index=True, key="arena_actions")
        else:
            st.caption("None yet.")

ui.how_it_works(
    r"""
**Online Elo** (Elo 1978). Before a vote, A's expected score is $E_A = 1 / (1 + 10^{(R_B - R_A)/400})$.
After it, $R_A \leftarrow R_A + K (S_A - E_A)$ and B moves by exactly the opposite amount ($S_A$ = 1 win,
0 loss, ½ tie). It is cheap and live, but the result depends on the order of the votes and on $K$.

**Bradley–Terry** (Bradley & Terry 1952), as Chatbot Arena uses it: every model has a strength $\theta$ and
$P(A \text{ beats } B) = \sigma(\ln 10\,(\theta_A - \theta_B))$, the same curve as Elo with rating $R = 1000 + 400\,\theta$.
We maximise the log-likelihood of all votes at once (order does not matter) plus a weak Gaussian prior
$-\tfrac{\lambda}{2}\lVert\theta\rVert^2$ that keeps ratings finite when a model never lost, using Newton's method.

**95% intervals** come from the bootstrap (Efron 1979): resample the votes with replacement, refit, and take the
2.5% and 97.5% quantiles. **Rank (UB)** = 1 + the number of models whose lower bound is above this model's upper bound,
so models whose intervals overlap share a rank.

**Pairs** are drawn fewest-votes-first (never a model against itself), in random places, and only votes cast
before the names are shown count.
""",
    arena.elo_update, arena.bt_from_wins, arena.bootstrap_ci, arena.draw_pair,
    paper="Chiang et al. 2024, 'Chatbot Arena: An Open Platform for Evaluating LLMs by Human Preference' (arXiv:2403.04132); "
          "Bradley & Terry 1952, Biometrika 39; Elo 1978, 'The Rating of Chessplayers, Past and Present'.",
)
