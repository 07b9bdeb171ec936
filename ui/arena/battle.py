"""The ⚔️ Battle tab of the arena page: the installed contenders, the battle settings, the prompt box and buttons,
starting a battle, the two answers (live while they are written, with Retry when one fails or stalls), the four vote
buttons and what follows a vote."""
from __future__ import annotations

import random

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

import ui
from labs import arena, models
from labs.arena import votes
from labs.core import settings


OUTCOME_LABELS = {"a": "A is better", "b": "B is better", "tie": "Tie", "bothbad": "Both are bad"}


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
