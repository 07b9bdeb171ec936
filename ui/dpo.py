"""Drawing helpers for the preference-tuning page: the data picker, making your own pairs, the live commentary and
the before/after results. The lesson lives in labs/finetune/dpo.py and labs/data/preferences.py."""
from __future__ import annotations

import random

import pandas as pd
import streamlit as st

import ui
from labs.serving import endpoints as backends
from labs.serving import generation
from labs.runs import jobs
from labs.runs import results
from labs.arena import votes
from labs.core import settings
from labs.data import preferences

P = "dpo"


# -- 1 · data ---------------------------------------------------------------------------------------------------------
def my_pair_set() -> list[preferences.PreferencePair]:
    return preferences.parse_records(st.session_state[f"{P}_my_pairs"], "your pairs").pairs \
        if st.session_state[f"{P}_my_pairs"] else []


def load_pairs():
    """(train pairs, held-out pairs, source name) or None after telling the user why."""
    source = st.radio("Preference data", ["Bundled: plain beats jargon", "Upload JSONL", "My pairs (this session)"],
                      key=f"{P}_source", horizontal=True,
                      help="Bundled: 167 pairs written for this lab (143 train, 24 held out) where the friendly, plain "
                           "answer is chosen and the jargon-dense one rejected. Upload: JSONL with prompt / chosen / "
                           "rejected (strings or chat messages) or conversations + chosen/rejected messages. "
                           "My pairs: the ones you pick below or import from the arena.")
    mine = my_pair_set()
    if source.startswith("Bundled"):
        train, held = preferences.bundled()
        extra = st.toggle(f"Add my pairs ({len(mine)})", key=f"{P}_add_mine", value=False, disabled=not mine,
                          help="Append the pairs you made or imported to the bundled training set.")
        pairs = train.pairs + (mine if extra else [])
        st.caption(f"{len(pairs)} training and {len(held)} held-out pairs · assets/dpo/ (written for LLM Lab).")
        return pairs, held.pairs, "bundled" + ("+mine" if extra else "")
    if source == "Upload JSONL":
        upload = st.file_uploader("Preference file (.jsonl or .json)", type=["jsonl", "json"], key=f"{P}_upload",
                                  help="One JSON object per line with prompt, chosen, rejected; up to 20 MB, UTF-8.")
        if upload is None:
            st.info("Upload a file, or pick the bundled set. Expected fields: " + preferences.EXPECTED_FIELDS + ".")
            return None
        try:
            loaded = preferences.parse_bytes(upload.getvalue(), upload.name)
        except preferences.PreferenceDataError as exc:
            st.error(f"That file cannot be used: {exc}")
            return None
        if loaded.problems:
            st.warning(f"{len(loaded.problems)} rows skipped: " + "; ".join(loaded.problems[:5])
                       + (" …" if len(loaded.problems) > 5 else ""))
        train, held = preferences.split(loaded.pairs, 0.15)
        st.caption(f"Read {len(loaded)} pairs from {upload.name}: {len(train)} to train on, {len(held)} held out.")
        return train, held, upload.name
    if not mine:
        st.info("You have no pairs yet: make some in **Make your own pairs** below, or import arena votes.")
        return None
    train, held = preferences.split(mine, 0.15)
    st.caption(f"{len(mine)} pairs of yours: {len(train)} to train on, {len(held)} held out.")
    return train, held, "mine"


def make_your_own(lm) -> None:
    st.markdown("Type a prompt, let the model answer twice (sampled, so the answers differ), and pick the better one. "
                "The pair joins **My pairs** for this browser session.")
    prompt = st.text_input("Prompt", key=f"{P}_own_prompt", placeholder="What should I look for in a new phone?",
                           help="Anything you would ask an assistant.")
    writer_key = ui.generator_picker("Model that writes the answers", f"{P}_own_model", default=lm.key,
                                     help="The model being tuned (default), another local model, or an endpoint "
                                          "from your models file: any of them can propose the two answers.")
    c1, c2 = st.columns(2)
    temperature = c1.slider("Temperature", 0.3, 1.5, 0.9, 0.1, key=f"{P}_own_temp",
                            help="Higher = the two answers differ more.")
    own_top = settings.new_tokens_slider_max(160)  # class mode caps each request
    max_new = c2.slider("Answer length (tokens)", 16, own_top, min(64, own_top), 16, key=f"{P}_own_len",
                        help="Longer answers take longer to sample (~20 tokens/s on 2 CPU cores).")
    if st.button("Sample two answers", key=f"{P}_own_sample"):
        if not prompt.strip():
            st.warning("Type a prompt first.")
        else:
            with ui.friendly_errors("Sampling"), st.spinner("Sampling two answers…"):
                seeds = random.Random().sample(range(1, 10**6), 2)
                writer = lm if writer_key == lm.key else ui.cached_target(writer_key)
                answers = [backends.generate(writer, prompt.strip(), generation.GenerationConfig(
                    max_new_tokens=settings.check_new_tokens(max_new), temperature=temperature, seed=s)).strip()
                    for s in seeds]
                st.session_state[f"{P}_candidates"] = {"prompt": prompt.strip(), "a": answers[0], "b": answers[1]}
    _pick_better()
    _my_pairs_tools()


def _pick_better() -> None:
    """The two sampled answers side by side; a pick adds a valid pair to My pairs."""
    cand = st.session_state[f"{P}_candidates"]
    if cand:
        left, right = st.columns(2)
        left.markdown("**Answer A**")
        left.write(cand["a"] or "_(empty)_")
        right.markdown("**Answer B**")
        right.write(cand["b"] or "_(empty)_")
        b1, b2, b3 = st.columns(3)
        pick = None
        if b1.button("A is better", key=f"{P}_pick_a"):
            pick = ("a", "b")
        if b2.button("B is better", key=f"{P}_pick_b"):
            pick = ("b", "a")
        if b3.button("Skip", key=f"{P}_pick_skip"):
            st.session_state[f"{P}_candidates"] = None
            st.rerun()
        if pick:
            row = {"prompt": cand["prompt"], "chosen": cand[pick[0]], "rejected": cand[pick[1]]}
            try:
                preferences.parse_row(row)
            except preferences.PreferenceDataError as exc:
                st.warning(f"Not added: {exc} Sample again.")
            else:
                st.session_state[f"{P}_my_pairs"] = st.session_state[f"{P}_my_pairs"] + [row]
                st.session_state[f"{P}_candidates"] = None
                st.rerun()


def _my_pairs_tools() -> None:
    """Import arena votes, download or clear My pairs, and the table of them."""
    mine = st.session_state[f"{P}_my_pairs"]
    c1, c2, c3 = st.columns(3)
    if c1.button("Import arena votes", key=f"{P}_import_arena",
                 help="Every decisive blind vote from the Arena page (A or B won) becomes a prompt/chosen/rejected pair."):
        with ui.friendly_errors("Importing arena votes"):
            rows = votes.export_preference_pairs()
            known = {(r["prompt"], r["chosen"], r["rejected"]) for r in mine}
            new = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows
                   if (r["prompt"], r["chosen"], r["rejected"]) not in known]
            st.session_state[f"{P}_my_pairs"] = mine + new
            mine = st.session_state[f"{P}_my_pairs"]
            st.toast(f"{len(new)} new pairs from {len(rows)} decisive arena votes." if rows else
                     "The arena has no decisive votes yet.")
    if mine:
        c2.download_button(f"Download my {len(mine)} pairs (JSONL)", preferences.to_jsonl(my_pair_set()),
                           file_name="my_preference_pairs.jsonl", key=f"{P}_dl_mine")
        if c3.button("Clear my pairs", key=f"{P}_clear_mine"):
            st.session_state[f"{P}_my_pairs"] = []
            st.rerun()
        st.dataframe(pd.DataFrame(mine)[["prompt", "chosen", "rejected"]], hide_index=True, width="stretch")
    else:
        c2.caption("No pairs of your own yet.")


# -- 3 · reading the curves -------------------------------------------------------------------------------------------
CURVES_EXPLAINED = r"""
**Reading the curves.** The rewards are DPO's *implicit* rewards (eq. 5):
$r(x,y)=\beta\log\frac{\pi_\theta(y\mid x)}{\pi_\text{ref}(y\mid x)}$ — how far the policy moved an answer's
log-probability away from the reference, times β. At step 1 the policy *is* the reference, so every reward is 0,
the loss is exactly $\log 2 = 0.693$ and the accuracy (a tie is not a win) is 0.

**Why the chosen reward often goes *down* while the margin grows.** The loss only sees the **margin**
$r(x,y_w)-r(x,y_l)$: it is happy whenever the rejected answer falls *faster* than the chosen one, even if both
fall. Chosen and rejected answers share a prompt, topic words and many tokens, so the gradient that pushes the
rejected answer down drags the chosen one along; and probability taken from both answers flows to *other* text
that is in neither. So `logps/chosen` and `rewards/chosen` often drift below zero while `rewards/margins` and the
accuracy climb. It is a known DPO failure mode (Pal et al. 2024, "Smaug: DPO-Positive"; Razin et al. 2024,
"likelihood displacement"), not a bug in the chart.

**What β does.** β is the strength of the leash to the reference (the KL weight in the paper's eq. 3). The loss
$-\log\sigma(\beta h)$ saturates once $\beta h$ is a few units, where $h$ is the change in log-ratio: with a
**large β** a small move already satisfies the loss, so the policy stays close to the reference; with a **small
β** it must move the log-probs much further — more change, more risk of forgetting. The rewards are scaled by β,
so compare runs with different β on the log-prob charts, not the reward charts. IPO aims the margin at a fixed
target $1/(2\beta)$ and stops; the hinge stops pushing once $\beta h \ge 1$; sigmoid DPO never quite stops.
"""


def live_commentary(run: jobs.Run) -> None:
    if not run.metrics:
        return
    first, last = run.metrics[0], run.metrics[-1]
    window = run.metrics[-5:]
    mean = lambda k: sum(m[k] for m in window) / len(window)  # noqa: E731 - last few steps, less noise
    chosen, rejected, margin = mean("rewards/chosen"), mean("rewards/rejected"), mean("rewards/margins")
    parts = [f"Step {last['step']}: chosen reward {chosen:+.3f}, rejected {rejected:+.3f}, margin {margin:+.3f} "
             f"(mean of the last {len(window)} steps); loss {first['loss']:.3f} at step 1."]
    if len(run.metrics) > 2 and margin > 0 and chosen < 0:
        parts.append("**The chosen reward is below zero while the margin is positive** — the chosen answers became "
                     "*less* likely than under the reference, but the rejected ones fell further. See below.")
    elif len(run.metrics) > 2 and margin > 0:
        parts.append("The margin is positive: the policy ranks chosen over rejected more than the reference did.")
    st.markdown(" ".join(parts))


def heldout_metrics(result: results.DPOResult) -> None:
    """Held-out preference, implicit reward accuracy, margin and the forgetting check, and the scored pairs."""
    held = result.heldout
    m = st.columns(4)
    m[0].metric("Prefers the chosen answer (held-out)", f"{held['policy_prefers_chosen']:.0%}",
                f"{(held['policy_prefers_chosen'] - held['reference_prefers_chosen']) * 100:+.0f} points vs "
                f"reference ({held['reference_prefers_chosen']:.0%})",
                help="Share of held-out pairs where log p(chosen) > log p(rejected): the reference before "
                     "tuning vs the tuned policy.")
    if "policy_gap" in held:
        m[0].caption(f"Mean log p(chosen) − log p(rejected): {held['reference_gap']:+.1f} → "
                     f"{held['policy_gap']:+.1f} nats (reference → tuned). A set the model already leans "
                     "toward shows its change here, not in the percentage.")
    m[1].metric("Implicit reward accuracy (held-out)", f"{held['implicit_reward_accuracy']:.0%}",
                help="Share of held-out pairs with r(chosen) > r(rejected), i.e. the policy moved toward the "
                     "chosen answer more than toward the rejected one. Before tuning every reward is 0 (a tie).")
    m[2].metric("Mean held-out margin", f"{held['mean_margin']:+.3f}", help="Mean r(chosen) − r(rejected).")
    m[3].metric("Forgetting check", f"{result.general_drift_per_token:+.3f} nats/token",
                help="Change in the log-probability (per token) of the reference's own answers to general "
                     "prompts after tuning. 0 = nothing forgotten; clearly negative = the model drifted.")
    with st.expander(f"Held-out pairs scored ({held['pairs']})"):
        by_index = {r["index"]: r for r in held["rows"]}
        st.dataframe(pd.DataFrame([{
            "prompt": r.get("prompt", i),
            "ref: log p(chosen) − log p(rejected)": round(r["ref_chosen"] - r["ref_rejected"], 2),
            "tuned: log p(chosen) − log p(rejected)": round(r["policy_chosen"] - r["policy_rejected"], 2),
            "reward chosen": round(r["reward_chosen"], 3), "reward rejected": round(r["reward_rejected"], 3)}
            for i, r in by_index.items()]), hide_index=True, width="stretch")


def answers(result: results.DPOResult) -> None:
    """Greedy answers of the reference and the tuned policy: held-out prompts, then general ones (forgetting)."""
    st.caption("Held-out prompts, greedy answers. Reference = the same weights with the adapter disabled.")
    st.dataframe(pd.DataFrame([{"prompt": s["prompt"], "reference": s["reference"], "DPO-tuned": s["tuned"]}
                               for s in result.samples]), hide_index=True, width="stretch")
    st.caption("General prompts (forgetting check): did the tuned model keep what it could do?")
    st.dataframe(pd.DataFrame([{"prompt": s["prompt"], "reference": s["reference"], "DPO-tuned": s["tuned"]}
                               for s in result.general]), hide_index=True, width="stretch")


def run_label(r: jobs.Run) -> str:
    return f"{r.id} · {r.config.get('loss_variant')} · β={r.config.get('beta')} · lr={r.config.get('learning_rate')}"
