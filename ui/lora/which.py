"""The Which matrices tab of the LoRA rank explorer: the equal-budget runs' table and, once none is active, the C7 box
(W_q alone vs W_q + W_v)."""
from __future__ import annotations

import streamlit as st

from labs.finetune import lora
from labs.runs import jobs, lessons
from ui.lessons import claim_box
from ui.lora.shared import results_table, unfinished_reason


def which_results(runs: list[jobs.Run]) -> None:
    """The equal-budget runs' table and, once none is active, the C7 box (W_q alone vs W_q + W_v)."""
    done = [r for r in runs if r.status == jobs.DONE and r.summary]
    if done:
        table = results_table(done)[["matrices", "r", "trainable params", "held-out loss after",
                                     "token accuracy after", "task score after", "seconds"]]
        st.dataframe(table, hide_index=True, width="stretch")
        st.caption("Toy scale: one small task, one seed, few steps — differences of a few hundredths are "
                   "noise. The paper's Table 5 uses WikiSQL and MultiNLI on GPT-3.")
    if any(r.active for r in runs):
        return
    by_targets = {tuple(r.config.get("targets", ())): r for r in runs}
    q_run, qv_run = by_targets.get(("q_proj",)), by_targets.get(("q_proj", "v_proj"))
    if q_run is None or qv_run is None:
        verdict = lessons.not_measured("C7", "include both W_q and W_q+W_v in the configurations")
    elif q_run.status != jobs.DONE or qv_run.status != jobs.DONE:
        verdict = lessons.not_measured("C7", unfinished_reason([q_run if q_run.status != jobs.DONE else qv_run]))
    else:
        verdict = lora.qv_verdict(qv_run.summary, q_run.summary)
    claim_box(verdict)
