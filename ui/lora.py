"""Drawing helpers for the LoRA rank explorer: target pickers, the calculator's figures, the shared training settings,
a group of runs watched live, the sweep and equal-budget results with their claim boxes, ΔW's spectra and subspace
similarity, and the merge check's figures. The arithmetic lives in labs/finetune/lora.py."""
from __future__ import annotations

import functools
import time

import pandas as pd
import streamlit as st

import ui
from labs.core import charts
from labs.runs import jobs
from labs.runs import lessons
from labs.finetune import lora
from labs import models
from labs.runs import results
from labs.core import settings
from ui.lessons import claim_box
from ui.runs import group_progress, watch_group


# -- the model's matrices ----------------------------------------------------------------------------------------------
def target_label(t: str) -> str:
    return f"{lora.TARGET_NAMES.get(t, t)} ({t})"


def target_options(key: str, arch: lora.Architecture) -> list[str]:
    """The chosen model's own matrix names; a selection from another architecture is reset."""
    options = list(arch.matrices)
    if any(t not in options for t in st.session_state.get(key, [])):
        st.session_state.pop(key)
    return options


def default_targets(options: list[str]) -> list[str]:
    return [t for t in ("q_proj", "v_proj") if t in options] or options[:1]


@st.cache_data(show_spinner=False)
def architecture(key: str) -> lora.Architecture:
    return lora.model_architecture(key)


def training_architecture(key: str) -> lora.Architecture:
    """Shapes of the model the runs will train (the tiny test model when LLMLAB_TINY_MODELS=1)."""
    if settings.tiny_models():
        return lora.architecture_of(ui.cached_model(key).model, "tiny " + models.spec(key).display_name)
    return architecture(key)


def mb(n_bytes: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= size:
            return f"{n_bytes / size:,.1f} {unit}"
    return f"{n_bytes:,.0f} B"


def count_text(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:,.1f}{unit}"
    return f"{n:,.0f}"


# -- 1. parameter calculator -------------------------------------------------------------------------------------------
def gpt_like_dimensions() -> tuple[int, int, int, int]:
    """(d_model, layers, d_ff, vocabulary) of a GPT-3-like transformer (GPT-3 175B by default)."""
    c = st.columns(4)
    hidden = c[0].number_input("d_model", 64, 100_000, 12288, 64, key="lora_gpt_hidden",
                               help="GPT-3 175B: 12,288 (Brown et al. 2020, Table 2.1).")
    n_layers = c[1].number_input("Layers", 1, 1000, 96, key="lora_gpt_layers", help="GPT-3 175B: 96.")
    ffn = c[2].number_input("d_ff", 64, 400_000, 4 * 12288, 64, key="lora_gpt_ffn",
                            help="MLP width; 4 × d_model in GPT-3.")
    vocab = c[3].number_input("Vocabulary", 1, 1_000_000, 50257, key="lora_gpt_vocab", help="GPT-3: 50,257.")
    return int(hidden), int(n_layers), int(ffn), int(vocab)


def calculator_figures(arch: lora.Architecture, count, targets: list[str], layers: int | None, tasks: int) -> None:
    """The count as metrics (share, reduction, files, training memory), the per-matrix table and params vs r."""
    m = st.columns(4)
    m[0].metric("Trainable (LoRA)", count_text(count.lora_params), help=f"{count.lora_params:,} numbers")
    m[1].metric("Share of the model", f"{100 * count.fraction:.4f} %",
                help=f"of {count.total_params:,} parameters ({arch.source})")
    m[2].metric("Fewer trainable parameters", f"{count.reduction:,.0f}×")
    m[3].metric(f"Adapter file (full checkpoint {mb(count.full_bytes)})", mb(count.adapter_bytes),
                help="The adapter is all a task needs to store; the base model is shared by every task.")
    storage = count.storage_for_tasks(tasks)
    memory = count.training_memory()
    m = st.columns(4)
    m[0].metric(f"{tasks} full copies", mb(storage["full copies"]))
    m[1].metric(f"1 base + {tasks} adapters", mb(storage["base + adapters"]))
    m[2].metric("Training memory, full fine-tuning", mb(memory["full fine-tuning"]),
                help="fp32 weights + gradients + Adam's two moments = 16 bytes per parameter (no activations).")
    m[3].metric("Training memory, LoRA", mb(memory["LoRA"]),
                help="Frozen weights at the storage precision + 16 bytes per adapter parameter.")
    st.dataframe(pd.DataFrame(count.rows), hide_index=True, width="stretch")
    limit = min(min(arch.shape(t)) for t in targets)
    ranks = [r for r in [1, 2, 4, 8, 16, 32, 64, 128, 256] if r <= limit]
    params = [lora.lora_parameter_count(arch, targets, r, layers).lora_params for r in ranks]
    st.plotly_chart(charts.bars([f"r={r}" for r in ranks], params, title="Trainable parameters vs r (grows linearly)",
                                y="LoRA parameters", text=[count_text(p) for p in params]), key="lora_calc_chart")


def gpt3_box() -> None:
    fig = lora.gpt3_reduction()
    st.info(
        f"**GPT-3 175B, r = 4 on W_q and W_v, computed from the dimensions:** "
        f"{fig['lora_params']:,} trainable parameters of {fig['total_params'] / 1e9:,.1f} B → "
        f"**{fig['reduction']:,.0f}× fewer**; the checkpoint is {fig['full_fp32_gb']:,.0f} GB in fp32 "
        f"({fig['full_fp16_gb']:,.0f} GB in fp16), the adapter {fig['adapter_fp16_mb']:,.1f} MB in fp16.  \n"
        "*Published (Hu et al. 2021, Section 4.2): \"reduce the number of trainable parameters by 10,000 times\", "
        "checkpoint \"from 350GB to 35MB\", training VRAM \"from 1.2TB to 350GB\".*")


# -- shared training settings (the sweep and the which-matrices runs) --------------------------------------------------
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
                                        help="Fewer adapted layers = shorter backward pass. 8 keeps a 3-rank "
                                             "sweep near two minutes on a 2-core CPU.")
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


# -- a group of runs: start, watch, tabulate ---------------------------------------------------------------------------
def submit_runs(configs: list[lora.LoraRunConfig], key: str, kind: str) -> None:
    """Queue one run per config as one group; their ids go to session_state[key]."""
    lm = ui.cached_model(configs[0].model_key)
    busy = jobs.active()  # runs already ahead of ours (any page, any user)
    group = f"lora-{kind}-{time.time_ns()}"  # one click = one sweep: its runs count as one run of yours
    ids = [jobs.submit(cfg, functools.partial(lora.train_lora, lm=lm), owner=ui.session_id(),
                       label=f"LoRA {cfg.label}", group=group) for cfg in configs]
    st.session_state[key] = ids
    queued = [r for r in (jobs.get(i) for i in ids) if r and r.status == jobs.QUEUED]
    if busy and queued:
        st.info(f"Other runs are in the queue; your {kind} waits its turn (one heavy run at a time on a CPU).")


def run_rows(ids: list[str]) -> list[jobs.Run]:
    return [r for r in (jobs.get(i) for i in ids) if r is not None]


def results_table(runs: list[jobs.Run]) -> pd.DataFrame:
    """One row per run: matrices, r, trainable parameters, loss / accuracy / task score before and after, cost."""
    rows = []
    for run in runs:
        s = run.summary or {}
        rows.append({"matrices": "+".join(
            lora.TARGET_NAMES.get(t, t) for t in run.config.get("targets", [])), "r": run.config.get("r"),
            "status": run.status + (" (replayed)" if run.replayed else ""),
            "trainable params": s.get("trainable_params"),
            "held-out loss before": s.get("base_val_loss"), "held-out loss after": s.get("final_val_loss"),
            "token accuracy after": s.get("final_val_accuracy"),
            "task score before": s.get("task_score_before"), "task score after": s.get("task_score_after"),
            "seconds": s.get("train_seconds"), "tokens/s": s.get("tokens_per_s"),
            "adapter+grad+Adam MB": s.get("train_state_mb"), "peak GPU MB": s.get("peak_cuda_mb"), "id": run.id})
    return pd.DataFrame(rows)


def live_view(key: str, prefix: str, x_key: str = "r") -> None:
    """Overlaid curves of the group of runs in session_state[key], refreshed while any of them is active."""

    def draw(runs: list[jobs.Run]) -> None:
        if not runs:
            return
        active = [r for r in runs if r.active]
        group_progress(runs)
        if active and st.button("Stop these runs", key=f"{prefix}_stop_all", help="Stop within one step each"):
            for run in active:
                jobs.stop(run.id, owner=ui.session_id())
            st.toast("Stopping…")
        named = {r.config["r"] if x_key == "r" else r.label: r for r in runs}
        label = (lambda k: f"r={k}") if x_key == "r" else str
        points = sum(len(r.metrics) for r in runs)
        c = st.columns(2)
        c[0].plotly_chart(charts.overlay({label(k): r.metrics for k, r in named.items()}, "train_loss",
                                         title="Training loss", smoothing=0.6), key=f"{prefix}_train_{points}")
        c[1].plotly_chart(charts.overlay({label(k): r.metrics for k, r in named.items()}, "val_loss",
                                         title="Held-out loss (step 0 = base model)", smoothing=0.0),
                          key=f"{prefix}_val_{points}")

    watch_group(st.session_state[key], draw, key=prefix, every=1.5)


def unfinished_reason(runs: list[jobs.Run]) -> str:
    return "; ".join(f"{r.label} did not finish ({r.reason or r.status})" for r in runs)


# -- 2. rank sweep -----------------------------------------------------------------------------------------------------
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


# -- 3. which matrices -------------------------------------------------------------------------------------------------
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


# -- 4. inside ΔW -----------------------------------------------------------------------------------------------------
def finished_runs() -> list[jobs.Run]:
    """Finished LoRA runs with an adapter, of the same model kind (tiny or real) as this app runs, whose base model
    this app still knows."""
    runs = [r for r in results.runs(lora.LoraRunConfig, status=(jobs.DONE,)) if (r.summary or {}).get("adapter")]
    return [r for r in runs if bool(r.config.get("tiny_models")) == settings.tiny_models()
            and _model_known(r.config.get("model_key", models.DEFAULT_CHAT_MODEL))]


def _model_known(key: str) -> bool:
    """Is the run's base model still available (a models-file entry may have been removed since)?"""
    try:
        models.spec(key)
        return True
    except models.ModelError:
        return False


def run_name(run: jobs.Run) -> str:
    cfg = run.config
    names = "+".join(lora.TARGET_NAMES.get(t, t) for t in cfg.get("targets", []))
    return (f"r={cfg.get('r')} · {names} · {cfg.get('steps')} steps · α={cfg.get('alpha')} · {cfg.get('init')} · "
            f"{run.id[-6:]}")


@st.cache_data(show_spinner=False, max_entries=16)
def deltas(folder: str) -> list[lora.DeltaW]:
    return lora.adapter_deltas(folder)


def adapter_notes(config: dict) -> None:
    if config.get("use_dora"):
        st.caption("DoRA run: ΔW below is the direction update (α/r)·BA; DoRA's per-row magnitude "
                   "rescaling comes on top of it.")
    if config.get("init") in ("pissa_niter_4", "olora"):
        st.caption("PiSSA/OLoRA run: the saved adapter was converted to a plain LoRA of rank 2r relative "
                   "to the original W0 (PEFT's path_initial_model_for_weight_conversion).")


def spectra(found: list[lora.DeltaW]) -> None:
    """Effective rank per layer and matrix (heatmap), chosen singular-value spectra, and the numbers."""
    rows = lora.delta_spectra(found)
    frame = pd.DataFrame(rows)
    pivot = frame.pivot(index="matrix", columns="layer", values="effective rank")
    st.plotly_chart(charts.heatmap(pivot.values.tolist(), [str(c) for c in pivot.columns], list(pivot.index),
                                   title="Effective rank of ΔW (Roy & Vetterli) per layer and matrix",
                                   x="layer", y="", zmin=1), key="lora_inside_erank")
    names = [f"L{row['layer']} {row['matrix']}" for row in rows]
    pick = st.multiselect("Singular values of", names, default=names[-2:], key="lora_inside_pick",
                          help="Each line: the singular values of one ΔW, largest first.")
    series = {n: (list(range(1, len(row["singular values"]) + 1)), row["singular values"])
              for n, row in zip(names, rows) if n in pick}
    if series:
        st.plotly_chart(charts.curves(series, title="Spectrum of ΔW = (α/r)·BA", x="index i", y="σ_i"),
                        key="lora_inside_spectrum")
    st.dataframe(frame.drop(columns=["singular values"]), hide_index=True, width="stretch", height=220)


def similarity(a1, a2, where: str) -> None:
    """φ(A1, A2, i, j) as a heatmap, with the random-subspace baseline and the paper's finding."""
    grid = lora.similarity_grid(a1, a2, max_j=64)
    st.plotly_chart(charts.heatmap(grid, [str(j) for j in range(1, len(grid[0]) + 1)],
                                   [str(i) for i in range(1, len(grid) + 1)], zmin=0, zmax=1,
                                   title=f"φ(A_r={a1.shape[0]}, A_r={a2.shape[0]}, i, j) at {where}",
                                   x="j (directions of adapter 2)", y="i (directions of adapter 1)",
                                   text_fmt=".2f" if len(grid[0]) <= 16 else None), key="lora_sim_heat")
    st.caption(f"For comparison, two random subspaces of ℝ^{a1.shape[1]} give φ ≈ max(i, j)/{a1.shape[1]} "
               f"(e.g. {1 / a1.shape[1]:.3f} at i = j = 1). The paper finds the top direction of r = 8 and "
               "r = 64 overlap with φ > 0.5: a very low rank captures what matters.")


def w0_relation(lm, layer_deltas: list[lora.DeltaW]) -> None:
    st.dataframe(pd.DataFrame(lora.w0_table(lm, layer_deltas)), hide_index=True, width="stretch")
    st.caption("If ||U^T W0 V^T|| on ΔW's directions is much smaller than on W0's own top directions (and "
               "near random), ΔW amplifies directions W0 has but does not emphasise; the amplification "
               "factor ||ΔW||/||U^T W0 V^T|| says by how much. Paper, Table 7 (GPT-3 layer 48, W_q): "
               "factor ≈ 21.5 for r = 4 and ≈ 6.9 for r = 64.")


# -- 5. merge check ----------------------------------------------------------------------------------------------------
def merge_figures(result: dict) -> None:
    """Logit difference merged vs unmerged, the adapter's effect, both speeds and both greedy texts."""
    m = st.columns(4)
    m[0].metric("max |Δlogits| unmerged − merged", f"{result['max_abs_diff']:.2e}",
                help=f"over {result['tokens']} token positions; the largest logit is {result['max_abs_logit']:.1f}")
    m[1].metric("max |Δlogits| adapter − base", f"{result['adapter_effect']:.3f}",
                help="How much the adapter changes the model at all.")
    m[2].metric("Unmerged, tokens/s", f"{result['unmerged_tokens_per_s']:.1f}")
    m[3].metric("Merged, tokens/s", f"{result['merged_tokens_per_s']:.1f}",
                f"{100 * (result['merged_tokens_per_s'] / result['unmerged_tokens_per_s'] - 1):+.0f} %")
    st.caption(("Same greedy text merged and unmerged. " if result["same_text"] else
                "The greedy texts differ (rounding can flip a near tie). ") +
               "The difference is float rounding (about 1e-6 of the logits’ size in fp32): merging is exact up to "
               "the order of the arithmetic. Speeds on this machine, now; other work on the machine shifts them.")
    c = st.columns(2)
    c[0].text_area("Unmerged output", result["text_unmerged"], disabled=True, key="lora_merge_out_a")
    c[1].text_area("Merged output", result["text_merged"], disabled=True, key="lora_merge_out_b")
