"""Softmax vs linear attention (DeltaNet, KDA, power): cost, memory and what a fixed-size state can recall.

The page is thin: widgets -> a frozen config -> labs.attention (operators, cost, memory, tasks) -> charts.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from labs.runs import jobs
from labs.runs import lessons
from labs.runs import results
from labs.attention import cost, memory, model, sweep, tasks
from labs.attention import runs as attention_runs
from labs.attention.mixers import VARIANTS
from ui.attention import (cost as cost_ui, inside as inside_ui, mechanisms as mechanisms_ui, memory as memory_ui,
                          tasks as tasks_ui)
from ui.lessons import claim_box, pending

ICON = "📏"
P = "attn"

ui.page_header(
    "Linear vs full attention",
    "Softmax attention compares every token with every earlier one: prefill costs grow with T², and decoding keeps "
    "a KV cache that grows with every token. Linear attention folds the past into a **fixed-size state** S "
    "(a K×V matrix per head), updated once per token like an RNN — linear cost, constant memory. The delta rule "
    "(DeltaNet), a decay gate (Gated DeltaNet) and a per-channel decay (KDA, the layer of Kimi Linear) decide what "
    "that state keeps. The catch: a fixed state has to **choose what to forget**. Below you measure the cost on "
    "this machine, compute the memory at long context, and train tiny models on recall and state-tracking tasks "
    "to see where a fixed state runs out.",
    ICON,
)
ui.init_state(P, cost_run=None, train_run=None, sweep_run=None, pal_run=None, par_run=None)
tab_mech, tab_cost, tab_mem, tab_tasks, tab_inside = st.tabs(
    ["Mechanisms", "Cost on this machine", "Memory at long context", "Synthetic tasks", "Look inside"])


def mechanisms_tab() -> None:
    st.markdown("Every variant is written twice in `labs/attention`: a plain **recurrent** reference (one token at "
                "a time) and a **parallel or chunked** form used for prefill and training. The tests check that "
                "both give the same numbers; you can check it here too.")
    mechanisms_ui.mechanism_table()
    variant = st.selectbox("Variant", list(VARIANTS), format_func=VARIANTS.get, key=f"{P}_mech_variant",
                           help="Show the equation and the real code of one variant.")
    st.latex(mechanisms_ui.EQUATIONS[variant])
    if st.button("Check recurrent = chunked on random input", key=f"{P}_mech_check",
                 help="Runs both forms of this mixer on a random sequence of 40 tokens and reports the largest "
                      "difference (float32 round-off is ~1e-6)."):
        with ui.friendly_errors("The check"):
            st.session_state[f"{P}_mech_diff"] = (variant, mechanisms_ui.recurrent_vs_chunked(variant))
    if st.session_state.get(f"{P}_mech_diff"):
        name, diff = st.session_state[f"{P}_mech_diff"]
        st.success(f"{VARIANTS[name]}: max |recurrent − chunked| = {diff:.2e} over 40 tokens.")
    ui.how_it_works(
        f"**{VARIANTS[variant]}** — {mechanisms_ui.PAPERS[variant]}. Shapes: q, k `[B, T, H, K]`, v `[B, T, H, V]`, "
        "state `[B, H, K, V]`; float32 inside.",
        *mechanisms_ui.SOURCES[variant], paper=mechanisms_ui.PAPERS[variant])


def cost_tab() -> None:
    st.markdown("Wall time and peak memory of each variant's whole-sequence form (prefill) and of one decoding "
                "step after a context of T tokens, measured **now on this machine**. On log-log axes the slope is "
                "the exponent: ≈ 2 for softmax prefill, ≈ 1 for the linear forms; ≈ 1 vs ≈ 0 for decoding.")
    c = st.columns(4)
    variants = c[0].multiselect("Variants", list(VARIANTS), default=list(cost.CostConfig().variants),
                                format_func=VARIANTS.get, key=f"{P}_cost_variants",
                                help="Which operators to time. Power attention (p = 2) is the slowest here.")
    max_len = c[1].selectbox("Longest sequence", [512, 1024, 2048, 4096, 8192, 16384], index=4, key=f"{P}_cost_max",
                             help="Lengths double from 256 up to this. 8k–16k take minutes on 2 cores; points "
                                  "whose memory estimate exceeds the cap are refused with the estimate shown.")
    heads = c[2].selectbox("Heads × head dim", ["2 × 64", "4 × 64", "1 × 128", "8 × 32"], key=f"{P}_cost_dims",
                           help="Size of the operator being timed (one layer, batch 1).")
    budget = c[3].slider("Time budget per variant (s)", 5, 300, 60, 5, key=f"{P}_cost_budget",
                         help="Longer lengths are skipped once a variant has used this much time.")
    h, d = (int(s) for s in heads.split(" × "))
    if st.button("Measure", key=f"{P}_cost_go", type="primary",
                 help="Runs in the background job queue; the charts fill in as points arrive."):
        with ui.friendly_errors("Measuring"):
            config = cost.CostConfig(variants=tuple(variants), max_len=int(max_len), heads=h, head_dim=d,
                                     budget_s=float(budget))
            st.session_state[f"{P}_cost_run"] = jobs.submit(config, cost.run_job, owner=ui.session_id(),
                                                            label="Attention cost")
    if st.session_state[f"{P}_cost_run"]:
        ui.run_panel(st.session_state[f"{P}_cost_run"], [], prefix=f"{P}_cost", extra=cost_ui.cost_extra)
    else:
        pending("C10", None, "press Measure")


def memory_tab() -> None:
    st.markdown("A full-attention layer caches something for **every** token; a KDA layer keeps a fixed state. "
                "In a hybrid with one full-attention layer in every four, only a quarter of the layers grow — so "
                "the cache shrinks by 1 − 1/4 = **75%** once the context is long enough for the fixed states to "
                "be negligible.")
    c = st.columns(3)
    keys = c[0].multiselect("Models", list(memory.CONFIGS), default=list(memory.CONFIGS),
                            format_func=lambda k: memory.CONFIGS[k].name, key=f"{P}_mem_models",
                            help="Architecture facts from each model's published config (see the table below).")
    context = c[1].select_slider("Context", [4096, 32_768, 131_072, 524_288, 1_000_000], value=1_000_000,
                                 key=f"{P}_mem_context", help="Tokens in one sequence.")
    bytes_per = c[2].selectbox("Bytes per number", [2, 1, 4], key=f"{P}_mem_bytes",
                               help="2 = bf16/fp16 (usual), 1 = an 8-bit cache, 4 = float32.")
    if keys:
        memory_ui.memory_figures(keys, context, bytes_per)
    hybrid, base = memory.CONFIGS["kimi-linear"], memory.CONFIGS["kimi-linear-mla"]
    m = st.columns(3)
    m[0].metric(f"Kimi Linear vs all-MLA at {context:,} tokens", f"{memory.reduction(hybrid, base, context):.1%} less",
                help="Computed here from the layer counts: 7 MLA layers keep a cache, 20 KDA layers a fixed state.")
    lin = m[1].number_input("Linear layers per full layer", 0, 15, 3, key=f"{P}_mem_ratio",
                            help="The layer ratio of a hybrid (Kimi Linear: 3 KDA : 1 MLA).")
    m[2].metric(f"Long-context limit for {lin}:1", f"{memory.ratio_reduction(int(lin), 1):.0%} less",
                help="linear / (linear + full): only the full-attention layers grow with the context.")
    claim_box(memory.hybrid_verdict(int(context)), note="A hybrid's own ratio is set above; the claim is about 3:1.")
    memory_ui.kimi_published()
    st.markdown("**Power attention** sets the state size by the degree p, independently of the parameters: "
                "C(K+p−1, p) features per head instead of K.")
    pk = st.select_slider("Head dim K for power attention", [16, 32, 64, 128], value=64, key=f"{P}_mem_pk",
                          help="State features grow like K^p / p!.")
    st.dataframe(pd.DataFrame(memory.power_state_table(int(pk))), hide_index=True, width="stretch")


def pairs_sweep() -> None:
    """C11: MQAR accuracy against the number of pairs, one curve per mixer (labs.attention.sweep)."""
    st.markdown("#### MQAR pairs sweep: when does a fixed-size state run out?")
    d = sweep.PairsSweepConfig()
    st.caption(f"One {d.n_layers}-layer model per mixer trains on a mix of the pair counts; each is scored on its own "
               f"held-out set. Defaults: width {d.d_model} in {d.n_heads} heads of {d.d_model // d.n_heads} (each "
               f"fixed state is {d.d_model // d.n_heads} × {d.d_model // d.n_heads}), vocabulary {d.vocab_size}, "
               f"{d.steps} steps at lr {d.lr:g}{ui.last_time(d)}.")
    c = st.columns(4)
    mixers = c[0].multiselect("Mixers", list(VARIANTS), default=list(d.mixers), format_func=VARIANTS.get,
                              key=f"{P}_sw_mixers", help="Keep softmax: the claim compares every fixed-state "
                                                           "mixer with it.")
    pairs = c[1].multiselect("Pairs", [1, 2, 4, 6, 8, 12, 16, 20], default=list(d.pairs), key=f"{P}_sw_pairs",
                             help="Numbers of key-value pairs to score (sequences are 4 × pairs tokens). "
                                  f"The vocabulary ({d.vocab_size}) allows at most {d.vocab_size // 2 - 2}.")
    steps = c[2].slider("Steps", 50, 1000, d.steps, 50, key=f"{P}_sw_steps",
                        help="Training steps per mixer; softmax needs ~300 to reach ~100 % at every count.")
    width = c[3].selectbox("Width d (4 heads)", [32, 64, 128], index=1, key=f"{P}_sw_d",
                           help="A wider head has a bigger state: 128 gives 32 × 32 per head, so the fixed-state "
                                "mixers hold more pairs.")
    if st.button("Run the pairs sweep", key=f"{P}_sw_go", type="primary",
                 help="Trains every mixer on the same batches in the background queue; the chart fills in every "
                      "50 steps."):
        with ui.friendly_errors("The pairs sweep"):
            config = sweep.PairsSweepConfig(mixers=tuple(mixers), pairs=tuple(sorted(int(p) for p in pairs)),
                                            steps=int(steps), d_model=int(width))
            st.session_state[f"{P}_sweep_run"] = jobs.submit(config, sweep.run, owner=ui.session_id(),
                                                             label="MQAR pairs sweep")
    run_id = st.session_state.get(f"{P}_sweep_run")
    if run_id:
        ui.run_panel(run_id, [("Loss", tasks_ui.mixer_metrics(jobs.get(run_id), "loss"))],
                     prefix=f"{P}_sw", smoothing=0.6, extra=tasks_ui.sweep_extra)
    else:
        claim_box(lessons.not_measured("C11", "no pairs sweep in this session yet: press 'Run the pairs sweep'"))


def tasks_tab() -> None:
    st.markdown("Tiny 2-layer models that differ **only in the mixer** train side by side on the same batches. "
                "**MQAR** asks for the value of keys seen earlier (only query positions are scored); **parity** "
                "and **permutation** composition track a running state; **copy / palindrome** reproduce a "
                "sequence. Runs are stored: the same settings and seed replay at once.")
    with st.expander("What the tasks look like (worked examples from `labs/attention/tasks.py`)"):
        st.code(tasks.__doc__.split("Each generator")[1], language="text")
    settings = tasks_ui.task_settings()
    if st.button("Train", key=f"{P}_train", type="primary", help="Start a background run (it queues if another "
                                                                  "run is going)."):
        with ui.friendly_errors("Training"):
            st.session_state[f"{P}_train_run"] = jobs.submit(model.TrainConfig(**settings), model.train,
                                                             owner=ui.session_id(), label="Attention tasks")
    run_id = st.session_state[f"{P}_train_run"]
    if run_id:
        run = jobs.get(run_id)
        ui.run_panel(run_id, [("Accuracy (held-out)", tasks_ui.mixer_metrics(run, "acc")),
                              ("Loss", tasks_ui.mixer_metrics(run, "loss"))],
                     prefix=f"{P}_train", smoothing=0.0, extra=tasks_ui.train_extra)
    table = attention_runs.task_rows(results.runs(model.TrainConfig, status=(jobs.DONE,)))
    if table:
        st.markdown("**All stored runs** — vary the pairs, the length or the width and compare:")
        st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
    pairs_sweep()
    tasks_ui.length_sweep("palindrome")  # C11b
    tasks_ui.length_sweep("parity")  # C11c: parity needs negative eigenvalues
    st.markdown(tasks_ui.HONEST_READING)


def inside_tab() -> None:
    stored = results.runs(model.TrainConfig, status=(jobs.DONE,))
    mine = st.session_state[f"{P}_train_run"]
    ids = [r.id for r in stored]
    if not ids:
        st.caption("Train models in the *Synthetic tasks* tab first; finished runs can be opened here.")
        return
    run_labels = {r.id: f"{r.config['task']} · {', '.join(r.config['mixers'])} · {r.config['steps']} steps · {r.id}"
                  for r in stored}
    if mine in ids and st.session_state.get(f"{P}_in_seen") != mine:  # a run just finished: open it
        st.session_state[f"{P}_in_run"], st.session_state[f"{P}_in_seen"] = mine, mine
    if st.session_state.get(f"{P}_in_run") not in ids:
        st.session_state[f"{P}_in_run"] = ids[0]
    chosen = st.selectbox("Run", ids, format_func=run_labels.get, key=f"{P}_in_run",
                          help="A finished training run (yours or an earlier stored one).")
    run = jobs.get(chosen)
    if st.session_state.get(f"{P}_in_mixer") not in run.config["mixers"]:
        st.session_state[f"{P}_in_mixer"] = run.config["mixers"][0]
    with ui.friendly_errors("Looking inside"):
        config = attention_runs.train_config(run)
        c = st.columns(3)
        which = c[0].selectbox("Mixer", list(config.mixers), format_func=VARIANTS.get, key=f"{P}_in_mixer",
                               help="Which trained model to open.")
        layer = c[1].selectbox("Layer", list(range(config.n_layers)), key=f"{P}_in_layer", help="0 = first.")
        sample = c[2].number_input("Sample", 0, 99, 0, key=f"{P}_in_sample", help="Which held-out sequence.")
        lm = inside_ui.trained_model(str(run.artifacts), config, which)
        if lm is None:
            st.warning("This run's saved models are missing; train again to look inside.")
        else:
            inside_ui.look_inside(lm, config.task_config(), which, int(layer), int(sample))


with tab_mech:
    mechanisms_tab()
with tab_cost:
    cost_tab()
with tab_mem:
    memory_tab()
with tab_tasks:
    tasks_tab()
with tab_inside:
    inside_tab()
st.caption("Shape legend: B batch, T time, H heads, K key dim, V value dim; float32 inside every operator. "
           "Cost measurements are capped at 16,384 tokens on a CPU.")
