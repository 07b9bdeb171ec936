"""Preference tuning with DPO: learn from chosen vs rejected answers, and see why the chosen reward can fall while the margin grows.

The page is thin: widgets -> DPOConfig -> jobs.submit(dpo.train) -> draw. The lesson lives in labs/finetune/dpo.py and
labs/data/preferences.py.
"""
from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

import ui
from labs.finetune import dpo
from labs.runs import jobs
from labs import models
from labs.runs import results
from labs.data import preferences
from ui import dpo as dpo_ui
from ui.lessons import run_claim
from ui.runs import compare_runs, start_button

ICON = "⚖️"
P = "dpo"
D = dpo.DPOConfig(n_train=1)  # the defaults the widgets start from (the bench and make prepare use the same)

ui.page_header(
    "Preference tuning",
    "After supervised fine-tuning a model can answer; **preference tuning** teaches it *which* answer people prefer "
    "(style, tone, safety). Each example is a prompt with a **chosen** and a **rejected** answer — think of the "
    "lecture's laptop question answered once in friendly plain words and once in dense jargon. **DPO** (Rafailov et "
    "al. 2023) needs no reward model and no RL: it raises the log-probability of the chosen answer relative to the "
    "rejected one, both measured against a frozen **reference** (here: the same weights with the LoRA adapter "
    "switched off). The trade-offs: drift away from what the model knew, and reinforcing whatever the pairs happen "
    "to reward.",
    ICON,
)
ui.init_state(P, run_id=None, my_pairs=[], candidates=None, candidate_note="")


lm = ui.model_picker(P, help="SmolLM2-135M-Instruct (default) already chats; DPO nudges its style. Gemma-3-270M is a "
                             "base model and sees plain prompts. Models from your models file are listed too.",
                     training=True)


def data_section():
    """Preference pairs (shown) and the make-your-own expander; returns load_pairs' (train, held-out, name) or None."""
    st.subheader("1 · Preference data")
    loaded = dpo_ui.load_pairs()
    if loaded is not None:
        st.dataframe(pd.DataFrame([{"prompt": p.prompt_text, "chosen ✓": p.chosen, "rejected ✗": p.rejected}
                                   for p in loaded[0][:8]]), hide_index=True, width="stretch")
    with st.expander("2 · Make your own pairs (and import arena votes)", expanded=False):
        dpo_ui.make_your_own(lm)
    return loaded


def settings_section(loaded) -> dpo.DPOConfig | None:
    st.subheader("3 · Train with DPO")
    c1, c2, c3, c4 = st.columns(4)
    variant = c1.selectbox("Loss", list(dpo.LOSS_VARIANTS), format_func=dpo.LOSS_VARIANTS.get, key=f"{P}_variant",
                           help="h = how much more the policy moved toward the chosen answer than toward the rejected "
                                "one (log-ratios vs the reference). Sigmoid = DPO; IPO regresses h onto 1/(2β); hinge "
                                "stops at βh = 1.")
    beta = c2.number_input("β", value=0.1, step=0.05, format="%.3f", key=f"{P}_beta",
                           help="Leash to the reference: larger = stay closer (and rewards scale up); 0.1 is the usual "
                                "default. Must be > 0.")
    lr = c3.number_input("Learning rate", 1e-6, 0.1, D.learning_rate, format="%.5f", key=f"{P}_lr",
                         help="AdamW step size for the LoRA matrices; 2e-3 on the top 8 layers moves SmolLM2 visibly "
                              "in ~30 steps.")
    steps = c4.number_input("Steps", 1, 1000, 30, key=f"{P}_steps",
                            help="Each step = 2 pairs: 4 sequences through the policy (with gradients) and 4 through "
                                 "the reference. 30 steps ≈ 1–2 min on 2 CPU cores.")
    c5, c6, c7, c8 = st.columns(4)
    pairs_per_step = c5.select_slider("Pairs per step", [1, 2, 4, 8], value=2, key=f"{P}_pairs",
                                      help="More pairs = smoother curves, slower steps.")
    lora_r = c6.select_slider("LoRA rank r", [1, 2, 4, 8, 16, 32], value=8, key=f"{P}_lora_r",
                              help="Rank of the adapter on q_proj and v_proj (alpha = 2r).")
    eval_pairs = c7.slider("Held-out pairs to score", 1, 64, 24, key=f"{P}_eval_pairs",
                           help="Scored at the end by the reference and the tuned policy.")
    seed = c8.number_input("Seed", 0, 10**6, 0, key=f"{P}_seed",
                           help="Same settings + seed replay the stored run instantly.")
    c9, c10, c11, _ = st.columns(4)
    sample_prompts = c9.slider("Held-out prompts to answer", 0, 8, 3, key=f"{P}_sample_prompts",
                               help="Answered greedily by the reference and the tuned policy at the end of the run "
                                    "(plus two general prompts for the forgetting check).")
    answer_tokens = c10.slider("Answer length (tokens)", 4, 160, 60, 4, key=f"{P}_answer_tokens",
                               help="New tokens per before/after answer; both sides' answers decode in one batch each.")
    last_layers = c11.number_input("Top layers adapted (0 = all)", 0, 64, D.last_layers, key=f"{P}_last_layers",
                                   help="LoRA only on the top N decoder layers: the backward pass stops there, so a "
                                        "step costs less; the reference still reads every layer.")
    if loaded is None:
        return None
    train_pairs, heldout_pairs, _ = loaded
    with ui.friendly_errors("These settings"):
        return dpo.DPOConfig(model_key=lm.key, data_id=preferences.fingerprint(train_pairs + heldout_pairs),
                             n_train=len(train_pairs), n_heldout=len(heldout_pairs), loss_variant=variant,
                             beta=float(beta), learning_rate=float(lr), steps=int(steps),
                             pairs_per_step=int(pairs_per_step), lora_r=int(lora_r), lora_alpha=2.0 * int(lora_r),
                             eval_pairs=int(eval_pairs), sample_prompts=int(sample_prompts),
                             max_new_tokens=int(answer_tokens), last_layers=int(last_layers), seed=int(seed))
    return None


def train_section(config, loaded) -> jobs.Run | None:
    if start_button("Train", key=f"{P}_train", current_id=st.session_state[f"{P}_run_id"], disabled=config is None):
        with ui.friendly_errors("Starting the run"):
            models.require_memory(lm.key, "lora", params=lm.num_parameters(), dtype=lm.dtype, device=lm.device)
            fn = functools.partial(dpo.train, lm=lm, train_pairs=loaded[0], heldout_pairs=loaded[1])
            st.session_state[f"{P}_run_id"] = jobs.submit(config, fn, owner=ui.session_id(), label="DPO")
    run_id = st.session_state[f"{P}_run_id"]
    if run_id:
        ui.run_panel(run_id, [("Loss", ["loss"]),
                              ("Rewards β·log π/π_ref", ["rewards/chosen", "rewards/rejected", "rewards/margins"]),
                              ("Reward accuracy (chosen > rejected)", ["rewards/accuracies"]),
                              ("Log-probs of the answers (policy)", ["logps/chosen", "logps/rejected"])],
                     prefix=P, extra=dpo_ui.live_commentary, smoothing=0.3)
    with st.expander("Reading the curves: why the chosen reward can fall, and what β does", expanded=bool(run_id)):
        st.markdown(dpo_ui.CURVES_EXPLAINED)
    return jobs.get(run_id) if run_id else None


def results_section(run: jobs.Run | None) -> None:
    result = results.load_result(run)
    run_claim("C8", run, lambda r: dpo.claim_verdict(r.metrics, heldout=result.heldout if result else None),
              "press Train")
    if result:
        st.subheader("4 · Before / after")
        if result.heldout:
            dpo_ui.heldout_metrics(result)
        dpo_ui.answers(result)
        st.subheader("5 · Export")
        ui.adapter_export(result.adapter, run.id, key=f"{P}_dl_adapter")
    past = results.runs(dpo.DPOConfig, with_metrics=True)
    if len(past) > 1:
        with st.expander(f"Compare runs ({len(past)}): what β and the loss variant change"):
            compare_runs(past, key=f"{P}_overlay", label=dpo_ui.run_label, metric_key=f"{P}_overlay_key",
                         metrics=["rewards/margins", "logps/chosen", "logps/rejected", "rewards/chosen", "loss"],
                         default_metric="rewards/margins", smoothing=0.3,
                         metric_help="Log-probs compare fairly across β; rewards are scaled by β.")


pairs = data_section()
dpo_config = settings_section(pairs)
results_section(train_section(dpo_config, pairs))

ui.how_it_works(
    r"""
**The DPO loss** (Rafailov et al. 2023, eq. 7), for a prompt $x$, chosen answer $y_w$ and rejected answer $y_l$:

$$\mathcal{L}_\text{DPO} = -\log\sigma\Big(\beta\log\frac{\pi_\theta(y_w\mid x)}{\pi_\text{ref}(y_w\mid x)}
- \beta\log\frac{\pi_\theta(y_l\mid x)}{\pi_\text{ref}(y_l\mid x)}\Big)$$

$\log\pi(y\mid x)$ is the **sum** of the answer tokens' log-probabilities (prompt tokens masked). Each term inside is
the implicit reward $r(x,y)=\beta\log\frac{\pi_\theta}{\pi_\text{ref}}$ (eq. 5). Its gradient (Section 4) is
$-\beta\,\sigma\big(r(x,y_l)-r(x,y_w)\big)\,[\nabla\log\pi(y_w\mid x)-\nabla\log\pi(y_l\mid x)]$: pairs the model
already ranks right get little weight. **IPO** (Azar et al. 2023, eq. 17) uses $(h-\frac{1}{2\beta})^2$ and
**hinge** (SLiC-HF, Zhao et al. 2023) $\max(0, 1-\beta h)$, where $h$ is the log-ratio difference.

**The reference without a second model.** The policy is LoRA on a copy of SmolLM2; with
`model.disable_adapter()` the same module computes the frozen base model, so $\pi_\text{ref}$ costs a forward pass
but no memory. Per step DPO runs $2B$ sequences (chosen + rejected) forward and backward through the policy and
forward through the reference: about 3× the compute of an SFT step on $B$ examples (measure it with
`python -m bench.bench_dpo`).
""",
    dpo.preference_loss, dpo.policy_and_reference_logps,
    paper="Rafailov et al. 2023, Direct Preference Optimization: Your Language Model is Secretly a Reward Model · "
          "Azar et al. 2023, A General Theoretical Paradigm to Understand Learning from Human Preferences (IPO) · "
          "Zhao et al. 2023, SLiC-HF · Pal et al. 2024, Smaug (DPO-Positive) · Razin et al. 2024, Unintentional "
          "Unalignment: Likelihood Displacement in DPO",
)
