"""The Rank sweep tab of the LoRA rank explorer: the training settings it shares with the Which matrices tab, and the
finished sweep's table, loss / task score / time vs r, its CSV and the C6 box."""
from __future__ import annotations

import streamlit as st

from labs import models
from labs.core import charts, settings
from labs.finetune import lora
from labs.runs import jobs, lessons
from ui.lessons import claim_box
from ui.lora.shared import results_table, unfinished_reason


def training_settings() -> dict:
    """The LoraRunConfig fields both experiments share (everything but r and the targets)."""
    with st.expander("Training settings (shared by the sweep and the which-matrices runs)", expanded=False):
        c = st.columns(4)
        model_key = c[0].selectbox("Model", [m.key for m in models.causal_models()], key="lora_model",
                                   format_func=lambda k: models.spec(k).display_name,
                                   help="SmolLM2 (chat) is the default; Gemma-3-270M is a base model and slower. "
                                        "Local models from your models file are listed too.")
        endpoints = [m.display_name for m in models.generators() if m.is_endpoint]
        if endpoints:
            st.caption(f"Not listed: {', '.join(endpoints)} (endpoints): training changes the weights, and a server "
                       "only sends back text.")
        last_layers = c[1].number_input("Adapt the last N layers (0 = all)", 0, 64, 8, key="lora_last_layers",
                                        help="Fewer adapted layers = shorter backward pass: the frozen layers below "
                                             "run once per example and are replayed.")
        steps = c[2].number_input("Steps", 1, 2000, 30, key="lora_steps", help="Optimizer steps per run.")
        lr = c[3].number_input("Learning rate", 1e-5, 0.5, 2e-3, format="%.4f", key="lora_lr",
                               help="LoRA runs use larger rates than full fine-tuning (1e-4 to 3e-3).")
        c = st.columns(4)
        alpha = c[0].number_input("α (alpha)", 0.1, 1024.0, 16.0, key="lora_alpha",
                                  help="The update is scaled by α/r (or α/√r with rsLoRA). The paper fixes α and "
                                       "does not tune it when r changes.")
        rslora = c[1].checkbox("rsLoRA scaling α/√r", False, key="lora_rslora",
                               help="Rank-stabilised LoRA (Kalajdzievski 2023): with α/r, large ranks learn "
                                    "slowly; α/√r keeps the update's size stable across r.")
        dora = c[2].checkbox("DoRA", False, key="lora_dora",
                             help="Weight-decomposed LoRA (Liu et al. 2024): learn a magnitude per row and use "
                                  "LoRA for the direction.")
        init = c[3].selectbox("Initialisation", list(lora.INIT_CHOICES), key="lora_init",
                              help="gaussian: A ~ N(0, 1/r), B = 0 (the paper). default: PEFT's Kaiming-uniform A. "
                                   "pissa_niter_4: A, B from W0's top singular vectors (PiSSA, fast SVD). "
                                   "olora: from a QR decomposition of W0 (OLoRA). Both move W0 at the start.")
        c = st.columns(4)
        dropout = c[0].number_input("LoRA dropout", 0.0, 0.9, 0.0, 0.05, key="lora_dropout",
                                    help="Dropout on the adapter's input. 0 for runs this short.")
        batch = c[1].number_input("Batch size", 1, 64, 4, key="lora_batch", help="Examples per step.")
        max_len = c[2].number_input("Max tokens per example", 16, 1024, 96, key="lora_max_len",
                                    help="Longer = slower. TL;DR examples are 61–96 tokens, sums about 50.")
        seed = c[3].number_input("Seed", 0, 2**31 - 1, 0, key="lora_seed",
                                 help="Same settings and seed replay the stored run at once.")
        task = st.selectbox("Task", list(lora.TASKS), key="lora_task", format_func=lora.TASKS.get,
                            help="64 training examples, 16 held-out ones for the loss; 8 of those are answered "
                                 "greedily before and after training for the task score.")
    return dict(model_key=model_key, task=task, last_layers=int(last_layers), steps=int(steps), lr=float(lr),
                alpha=float(alpha), use_rslora=rslora, use_dora=dora, init=init, dropout=float(dropout),
                batch_size=int(batch), max_len=int(max_len), seed=int(seed), tiny_models=settings.tiny_models())


def sweep_results(runs: list[jobs.Run]) -> None:
    """The finished sweep's table, loss / task score / time vs r, a CSV, and the C6 box once no run is active."""
    done = [r for r in runs if r.status == jobs.DONE and r.summary]
    if done:
        table = results_table(done).sort_values("r")
        st.dataframe(table, hide_index=True, width="stretch")
        c = st.columns(3)
        rs = table["r"].tolist()
        c[0].plotly_chart(charts.curves({"after": (rs, table["held-out loss after"].tolist()),
                                         "base model": (rs, table["held-out loss before"].tolist())},
                                        title="Final held-out loss vs r", x="rank r", y="loss",
                                        dash={"base model": "dot"}).update_xaxes(type="log"), key="lora_sweep_vs_r")
        if table["task score after"].notna().any():
            c[1].plotly_chart(charts.curves({"after": (rs, table["task score after"].tolist()),
                                             "base model": (rs, table["task score before"].tolist())},
                                            title="Task score vs r (greedy, held-out)", x="rank r", y="share",
                                            dash={"base model": "dot"}).update_xaxes(type="log"),
                              key="lora_sweep_score")
        c[2].plotly_chart(charts.bars([f"r={r}" for r in table["r"]], table["seconds"].tolist(),
                                      title="Training time per run", y="seconds",
                                      text=[f"{s:.0f} s" for s in table["seconds"]]), key="lora_sweep_time")
        st.download_button("Sweep results (CSV)", table.to_csv(index=False), "lora-sweep.csv", key="lora_sweep_csv")
    unfinished = [r for r in runs if r.status in (jobs.FAILED, jobs.STOPPED)]
    if not any(r.active for r in runs):
        claim_box(lora.rank_verdict([r.summary for r in done]) if not unfinished else
                  lessons.not_measured("C6", unfinished_reason(unfinished)),
                  note="The task score is a format check on 8 held-out prompts after 30 steps: one prompt is 0.125, "
                       "so small gaps are noise; the paper compares r = 1–64 on GPT-3 (Table 6).")
