"""Two anonymous models answer the same prompt, the class votes, and Elo / Bradley–Terry rank them with 95% intervals."""
from __future__ import annotations

import random

import streamlit as st

import ui
from labs import arena
from labs.arena import votes
from labs.core.errors import ConfigError
from ui.arena import battle as battle_ui
from ui.arena import classroom as classroom_ui
from ui.arena import leaderboard as leaderboard_ui
from ui.arena import shared as shared_ui
from ui.arena import votes as votes_ui


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
              contenders=None, voter=None, voter_name=None, join_error=None)
client = shared_ui.client()  # for the burst limit and the instructor's log
store = shared_ui.open_store()
password_set = bool(shared_ui.secret_password())
shared_ui.restore(store, password_set)
by_name = battle_ui.contenders()


def battle_tab() -> None:
    """Prompt -> two contenders (drawn blind, or named) -> both answers live -> one vote -> the names revealed."""
    battle_ui.battle_settings(by_name)
    battle_ui.prompt_box()
    battle = arena.get_battle(st.session_state.arena_battle_id)
    running = battle is not None and not battle.finished
    go, regen = battle_ui.battle_buttons(battle, running)
    if go and not running:
        with ui.friendly_errors("The battle"):
            prompt = arena.check_prompt(st.session_state.arena_prompt)
            if st.session_state.get("arena_named"):
                a, b = by_name.get(st.session_state.arena_pick_a), by_name.get(st.session_state.arena_pick_b)
                if a is None or b is None or a.name == b.name:
                    raise ConfigError("Pick two different contenders for a named battle.")
                battle_ui.start(prompt, a, b, swapped=False, blind=False)
            else:
                pool = [n for n in st.session_state.arena_contenders if n in by_name]
                per_model, per_pair = arena.counts_from(store.votes())
                a, b, swapped = arena.draw_pair(pool, per_model, random.Random(), per_pair)
                battle_ui.start(prompt, by_name[a], by_name[b], swapped=swapped, blind=True)
            st.rerun()
    if regen and battle is not None and not running:
        with ui.friendly_errors("Regenerating"):
            battle_ui.start(battle.prompt, battle.a.contender, battle.b.contender, swapped=battle.swapped,
                            blind=battle.blind)
            st.rerun()
    battle_ui.answers(battle, running)

    voted = battle is not None and battle.outcome is not None
    shared_ui.voter_panel(store, password_set)
    can_vote = (battle is not None and battle.finished and not voted and not battle.failed
                and bool(st.session_state.arena_voter))
    outcome = battle_ui.vote_buttons(can_vote)
    if outcome is not None:
        current = arena.get_battle(st.session_state.arena_battle_id)
        if current is None:
            st.warning("That battle has expired: start a new round.")
        else:
            try:  # the store refuses closed voting, the cap, and bursts from one address
                current.vote(store, st.session_state.arena_voter, outcome, client=client)
                st.session_state.arena_message = ("success", "Thanks, your vote is stored. The names are revealed "
                                                             "above.")
                st.rerun()
            except votes.VoteRejected as exc:
                st.warning(str(exc))
    battle_ui.after_vote(battle, voted, running)


def board_tab() -> None:
    """Rating settings -> Bradley–Terry with bootstrap intervals, online Elo, pair matrices (live while voting)."""
    if leaderboard_ui.board_settings():
        st.fragment(run_every=5)(leaderboard_ui.draw_board)(store)
    else:
        leaderboard_ui.draw_board(store)
    st.caption("Bradley–Terry uses a weak Gaussian prior (σ = 400 points) so a model with only wins or only losses "
               "still gets a finite rating; with many votes the prior no longer matters. Ratings are anchored at a "
               "mean of 1000.")


def votes_tab() -> None:
    """Your vote count, the latest votes, and the exports (when no instructor password guards them)."""
    mine = store.count(voter_id=st.session_state.arena_voter) if st.session_state.arena_voter else 0
    st.metric("Your blind votes on this board", mine)
    votes_ui.recent_votes(store)
    if st.session_state.arena_instructor or not password_set:
        votes_ui.draw_exports(store, "votes", client)
    else:
        st.caption("Exports are in the instructor panel (🧑‍🏫 Classroom).")


def classroom_tab() -> None:
    """The join link for the room; behind the instructor password: class switches, voters, exports, the log."""
    classroom_ui.join_panel(store, password_set)
    st.subheader("Instructor")
    if not password_set:
        st.warning(classroom_ui.SET_PASSWORD_HOWTO)
    elif not st.session_state.arena_instructor:
        classroom_ui.unlock(store, client)
    if st.session_state.arena_instructor and password_set:
        who = shared_ui.who(client)
        classroom_ui.class_switches(store, who)
        classroom_ui.votes_per_voter(store, who)
        votes_ui.draw_exports(store, "instructor", client)
        if st.button("Lock instructor controls", key="arena_lock"):
            st.session_state.arena_instructor = False
            store.log_action(who, "lock")
            st.rerun()
    if st.session_state.arena_instructor or not password_set:
        classroom_ui.action_log(store)


tab_battle, tab_board, tab_votes, tab_class = st.tabs(["⚔️ Battle", "🏆 Leaderboard", "🗳️ Votes", "🧑‍🏫 Classroom"])
with tab_battle:
    battle_tab()
with tab_board:
    board_tab()
with tab_votes:
    votes_tab()
with tab_class:
    classroom_tab()

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
