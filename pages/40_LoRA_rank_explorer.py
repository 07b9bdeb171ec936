"""Low-rank adaptation: count its parameters, sweep the rank r, and look inside the learned update ΔW = BA."""
from __future__ import annotations

import functools
import time

import pandas as pd
import streamlit as st

import ui
from labs import charts, jobs, lessons, lora, models, results, settings
from ui.lessons import claim_box

ICON = "🎛️"

ui.page_header(
    "LoRA rank explorer",
    "LoRA (Hu et al. 2021) freezes a pretrained weight W0 and learns only a low-rank update ΔW = B A, with "
    "B ∈ ℝ^{d×r}, A ∈ ℝ^{r×k} and r ≪ min(d, k): h = W0 x + (α/r)·B A x. B starts at zero, so training starts "
    "exactly at the base model, and after training BA can be added into W0 — no extra latency. Here you count "
    "what that saves, train adapters at several ranks on the same task, and open up the learned ΔW: how many "
    "directions it really uses, whether a small and a large rank find the same ones, and how it relates to W0.",
    ICON,
)
ui.init_state("lora", sweep_ids=[], which_ids=[], merge_result=None, message=None)
me = ui.session_id()
def target_label(t: str) -> str:
    return f"{lora.TARGET_NAMES.get(t, t)} ({t})"


def _target_options(key: str, arch: lora.Architecture) -> list[str]:
    """The chosen model's own matrix names; a selection from another architecture is reset."""
    options = list(arch.matrices)
    if any(t not in options for t in st.session_state.get(key, [])):
        st.session_state.pop(key)
    return options


def _default_targets(options: list[str]) -> list[str]:
    return [t for t in ("q_proj", "v_proj") if t in options] or options[:1]


@st.cache_data(show_spinner=False)
def _architecture(key: str) -> lora.Architecture:
    return lora.model_architecture(key)


def training_architecture(key: str) -> lora.Architecture:
    """Shapes of the model the runs will train (the tiny test model when LLMLAB_TINY_MODELS=1)."""
    if settings.tiny_models():
        return lora.architecture_of(ui.cached_model(key).model, "tiny " + models.spec(key).display_name)
    return _architecture(key)


def _mb(n_bytes: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= size:
            return f"{n_bytes / size:,.1f} {unit}"
    return f"{n_bytes:,.0f} B"


def _count(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:,.1f}{unit}"
    return f"{n:,.0f}"


tab_calc, tab_sweep, tab_which, tab_inside, tab_merge = st.tabs(
    ["Parameter calculator", "Rank sweep", "Which matrices", "Inside ΔW", "Merge check"])

# ---------------------------------------------------------------------------------------------------
# 1. Parameter calculator
# ---------------------------------------------------------------------------------------------------
with tab_calc:
    st.markdown("Each adapted matrix W0 ∈ ℝ^{d×k} gets A (r×k) and B (d×r): **r (d + k)** trainable numbers "
                "instead of d·k. Nothing is trained here; the shapes come from the model's config.")
    c = st.columns([2, 3, 1, 1])
    source = c[0].selectbox("Model", [m.key for m in models.causal_models()] + ["gpt-like"], key="lora_calc_model",
                            format_func=lambda k: "GPT-3-like (enter dimensions)" if k == "gpt-like"
                            else models.spec(k).display_name,
                            help="Local models (packaged and from your models file) read their exact shapes from "
                                 "config.json; GPT-3-like builds a transformer from its width and depth.")
    try:
        calc_arch = None if source == "gpt-like" else _architecture(source)
    except (models.ModelError, OSError, ValueError) as exc:
        st.error(f"Reading the shapes of {models.spec(source).display_name} did not work: {exc}")
        st.stop()
    calc_options = list(lora.ALL_TARGETS[:4]) + ["up_proj", "down_proj"] if calc_arch is None else \
        _target_options("lora_calc_targets", calc_arch)
    calc_targets = c[1].multiselect("Matrices to adapt", calc_options, default=_default_targets(calc_options),
                                    key="lora_calc_targets", format_func=target_label,
                                    help="The paper adapts only the attention query and value projections.")
    calc_r = c[2].number_input("Rank r", 0, 100_000, 4, key="lora_calc_r",
                               help="Rank of ΔW = BA. The paper finds r = 1–8 already works for GPT-3.")
    calc_layers = c[3].number_input("Layers (0 = all)", 0, 1000, 0, key="lora_calc_layers",
                                    help="How many layers carry an adapter (0 = every layer).")
    c = st.columns(4)
    calc_dora = c[0].checkbox("DoRA", False, key="lora_calc_dora",
                              help="DoRA adds one magnitude number per output row of each adapted matrix.")
    calc_bytes = c[1].selectbox("Stored as", [2, 4], key="lora_calc_bytes",
                                format_func=lambda b: {2: "fp16/bf16 (2 bytes)", 4: "fp32 (4 bytes)"}[b],
                                help="Bytes per number in the checkpoint files.")
    calc_tasks = c[2].number_input("Tasks", 1, 10_000, 100, key="lora_calc_tasks",
                                   help="How many task-specific models you want to keep.")
    if source == "gpt-like":
        c = st.columns(4)
        hidden = c[0].number_input("d_model", 64, 100_000, 12288, 64, key="lora_gpt_hidden",
                                   help="GPT-3 175B: 12,288 (Brown et al. 2020, Table 2.1).")
        n_layers = c[1].number_input("Layers", 1, 1000, 96, key="lora_gpt_layers", help="GPT-3 175B: 96.")
        ffn = c[2].number_input("d_ff", 64, 400_000, 4 * 12288, 64, key="lora_gpt_ffn",
                                help="MLP width; 4 × d_model in GPT-3.")
        vocab = c[3].number_input("Vocabulary", 1, 1_000_000, 50257, key="lora_gpt_vocab", help="GPT-3: 50,257.")
    with ui.friendly_errors("The parameter count"):
        arch = (lora.gpt_like(int(hidden), int(n_layers), int(ffn), int(vocab), name="GPT-3-like")
                if source == "gpt-like" else _architecture(source))
        count = lora.lora_parameter_count(arch, calc_targets, int(calc_r), int(calc_layers) or None,
                                          use_dora=calc_dora, bytes_per_param=int(calc_bytes))
        m = st.columns(4)
        m[0].metric("Trainable (LoRA)", _count(count.lora_params), help=f"{count.lora_params:,} numbers")
        m[1].metric("Share of the model", f"{100 * count.fraction:.4f} %",
                    help=f"of {count.total_params:,} parameters ({arch.source})")
        m[2].metric("Fewer trainable parameters", f"{count.reduction:,.0f}×")
        m[3].metric(f"Adapter file (full checkpoint {_mb(count.full_bytes)})", _mb(count.adapter_bytes),
                    help="The adapter is all a task needs to store; the base model is shared by every task.")
        storage = count.storage_for_tasks(int(calc_tasks))
        memory = count.training_memory()
        m = st.columns(4)
        m[0].metric(f"{calc_tasks} full copies", _mb(storage["full copies"]))
        m[1].metric(f"1 base + {calc_tasks} adapters", _mb(storage["base + adapters"]))
        m[2].metric("Training memory, full fine-tuning", _mb(memory["full fine-tuning"]),
                    help="fp32 weights + gradients + Adam's two moments = 16 bytes per parameter (no activations).")
        m[3].metric("Training memory, LoRA", _mb(memory["LoRA"]),
                    help="Frozen weights at the storage precision + 16 bytes per adapter parameter.")
        st.dataframe(pd.DataFrame(count.rows), hide_index=True, width="stretch")
        ranks = [1, 2, 4, 8, 16, 32, 64, 128, 256]
        limit = min(min(arch.shape(t)) for t in calc_targets)
        ranks = [r for r in ranks if r <= limit]
        params = [lora.lora_parameter_count(arch, calc_targets, r, int(calc_layers) or None).lora_params for r in ranks]
        st.plotly_chart(charts.bars([f"r={r}" for r in ranks], params, title="Trainable parameters vs r (grows linearly)",
                                    y="LoRA parameters", text=[_count(p) for p in params]), key="lora_calc_chart")

    fig = lora.gpt3_reduction()
    st.info(
        f"**GPT-3 175B, r = 4 on W_q and W_v, computed from the dimensions:** "
        f"{fig['lora_params']:,} trainable parameters of {fig['total_params'] / 1e9:,.1f} B → "
        f"**{fig['reduction']:,.0f}× fewer**; the checkpoint is {fig['full_fp32_gb']:,.0f} GB in fp32 "
        f"({fig['full_fp16_gb']:,.0f} GB in fp16), the adapter {fig['adapter_fp16_mb']:,.1f} MB in fp16.  \n"
        "*Published (Hu et al. 2021, Section 4.2): \"reduce the number of trainable parameters by 10,000 times\", "
        "checkpoint \"from 350GB to 35MB\", training VRAM \"from 1.2TB to 350GB\".*")


# ---------------------------------------------------------------------------------------------------
# Shared training settings (used by the sweep and the which-matrices experiment)
# ---------------------------------------------------------------------------------------------------
def training_settings() -> dict:
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
    return dict(model_key=model_key, task=task, last_layers=int(last_layers), steps=int(steps), lr=float(lr), alpha=float(alpha),
                use_rslora=rslora, use_dora=dora, init=init, dropout=float(dropout), batch_size=int(batch),
                max_len=int(max_len), seed=int(seed), tiny_models=settings.tiny_models())


def submit_runs(configs: list[lora.LoraRunConfig], key: str, kind: str) -> None:
    lm = ui.cached_model(configs[0].model_key)
    busy = jobs.active()  # runs already ahead of ours (any page, any user)
    group = f"lora-{kind}-{time.time_ns()}"  # one click = one sweep: its runs count as one run of yours
    ids = [jobs.submit(cfg, functools.partial(lora.train_lora, lm=lm), owner=me, label=f"LoRA {cfg.label}",
                       group=group) for cfg in configs]
    st.session_state[key] = ids
    queued = [r for r in (jobs.get(i) for i in ids) if r and r.status == jobs.QUEUED]
    if busy and queued:
        st.info(f"Other runs are in the queue; your {kind} waits its turn (one heavy run at a time on a CPU).")


def run_rows(ids: list[str]) -> list[jobs.Run]:
    return [r for r in (jobs.get(i) for i in ids) if r is not None]


def results_table(runs: list[jobs.Run]) -> pd.DataFrame:
    rows = []
    for run in runs:
        s = run.summary or {}
        rows.append({"matrices": "+".join(
            lora.TARGET_NAMES.get(t, t) for t in run.config.get("targets", [])), "r": run.config.get("r"),
            "status": run.status + (" (replayed)" if run.replayed else ""),
            "trainable params": s.get("trainable_params"),
            "held-out loss before": s.get("base_val_loss"), "held-out loss after": s.get("final_val_loss"),
            "token accuracy after": s.get("final_val_accuracy"),
            "task score before": s.get("task_score_before"), "task score after": s.get("task_score_after"), "seconds": s.get("train_seconds"),
            "tokens/s": s.get("tokens_per_s"), "adapter+grad+Adam MB": s.get("train_state_mb"),
            "peak GPU MB": s.get("peak_cuda_mb"), "id": run.id})
    return pd.DataFrame(rows)


def live_view(key: str, prefix: str, x_key: str = "r") -> None:
    """Overlaid curves of a group of runs, refreshed while any of them is active."""

    def draw():
        runs = run_rows(st.session_state[key])
        if not runs:
            return
        active = [r for r in runs if r.active]
        for run in runs:
            if run.status == jobs.RUNNING:
                st.progress(min(run.step / (run.total_steps or 1), 1.0),
                            text=f"{run.label}: step {run.step}/{run.total_steps or '?'} · {run.elapsed:.0f} s")
            elif run.status == jobs.QUEUED:
                st.caption(f"{run.label}: waiting in the queue (position {run.position})")
            elif run.status in (jobs.FAILED, jobs.STOPPED):
                st.warning(f"{run.label}: {run.reason}")
        if active and st.button("Stop these runs", key=f"{prefix}_stop_all", help="Stop within one step each"):
            for run in active:
                jobs.stop(run.id, owner=me)
            st.toast("Stopping…")
        named = {r.config["r"] if x_key == "r" else r.label: r for r in runs}
        label = (lambda k: f"r={k}") if x_key == "r" else str
        c = st.columns(2)
        c[0].plotly_chart(charts.overlay({label(k): r.metrics for k, r in named.items()}, "train_loss",
                                         title="Training loss", smoothing=0.6),
                          key=f"{prefix}_train_{sum(len(r.metrics) for r in runs)}")
        c[1].plotly_chart(charts.overlay({label(k): r.metrics for k, r in named.items()}, "val_loss",
                                         title="Held-out loss (step 0 = base model)", smoothing=0.0),
                          key=f"{prefix}_val_{sum(len(r.metrics) for r in runs)}")
        if not active and st.session_state.get(f"{prefix}_was_live"):
            st.session_state[f"{prefix}_was_live"] = False
            st.rerun()

    runs = run_rows(st.session_state[key])
    if any(r.active for r in runs):
        st.session_state[f"{prefix}_was_live"] = True
        st.fragment(run_every=1.5)(draw)()
    else:
        draw()


# ---------------------------------------------------------------------------------------------------
# 2. Rank sweep
# ---------------------------------------------------------------------------------------------------
with tab_sweep:
    st.markdown("Train one adapter per rank on the same task and data, then compare. The paper (Table 6) finds "
                "that on GPT-3 even r = 1 or 2 nearly matches r = 64 for W_q + W_v.")
    common = training_settings()
    c = st.columns([2, 3])
    sweep_ranks = c[0].multiselect("Ranks", list(lora.RANK_CHOICES), default=[1, 8, 64], key="lora_ranks",
                                   help="One background run per rank, one after another. r = 8 and r = 64 feed "
                                        "the subspace-similarity view in 'Inside ΔW'.")
    sweep_options = list(lora.ALL_TARGETS)
    with ui.friendly_errors("Reading the model's matrices"):
        sweep_options = _target_options("lora_targets", training_architecture(common["model_key"]))
    sweep_targets = c[1].multiselect("Matrices", sweep_options, default=_default_targets(sweep_options),
                                     key="lora_targets", format_func=target_label,
                                     help="Where the adapters go. Matrices the model lacks are refused.")
    if st.button("Train the sweep", key="lora_sweep_go", type="primary"):
        with ui.friendly_errors("Starting the sweep"):
            if not sweep_ranks:
                raise ValueError("Pick at least one rank.")
            configs = [lora.LoraRunConfig(r=int(r), targets=tuple(sweep_targets), **common) for r in sorted(sweep_ranks)]
            arch = training_architecture(common["model_key"])
            for cfg in configs:
                lora.validate_rank_targets(arch, cfg.targets, cfg.r)
            submit_runs(configs, "lora_sweep_ids", "sweep")
    if st.session_state["lora_sweep_ids"]:
        live_view("lora_sweep_ids", "lora_sweep")
        runs = run_rows(st.session_state["lora_sweep_ids"])
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
            claim_box(lora.rank_verdict([r.summary for r in done]) if not unfinished else lessons.not_measured(
                "C6", "; ".join(f"{r.label} did not finish ({r.reason or r.status})" for r in unfinished)),
                note="The task score is a format check on 8 held-out prompts after 30 steps: one prompt is 0.125, "
                     "so small gaps are noise; the paper compares r = 1–64 on GPT-3 (Table 6).")
    else:
        claim_box(lessons.not_measured("C6", "no sweep in this session yet: press 'Train the sweep'"))


# ---------------------------------------------------------------------------------------------------
# 3. Which matrices (paper Table 5, at toy scale)
# ---------------------------------------------------------------------------------------------------
CHOICES = lora.MATRIX_CHOICES
with tab_which:
    st.markdown("The same parameter budget spent on different matrices: the paper (Table 5) spends 18M "
                "parameters on GPT-3 as r = 8 on one matrix type, r = 4 on two or r = 2 on all four, and finds "
                "W_q + W_v (or all four) beats any single matrix. The rank here is chosen to fit the budget; "
                "the training settings are the sweep's.")
    c = st.columns([3, 1])
    which = c[0].multiselect("Configurations", list(CHOICES), default=["W_q", "W_q+W_v", "all four"],
                             key="lora_which", help="One background run each, the same steps and data.")
    budget_r = c[1].number_input("Budget = r on W_q alone", 1, 512, 8, key="lora_which_budget_r",
                                 help="The budget is the parameter count of LoRA with this rank on W_q only.")
    with ui.friendly_errors("Planning the runs"):
        arch = training_architecture(common["model_key"])
        layers = min(common["last_layers"], arch.layers) or None
        budget = lora.lora_parameter_count(arch, ["q_proj"], int(budget_r), layers).lora_params
        plan = [(name, CHOICES[name], lora.rank_for_budget(arch, CHOICES[name], budget, layers)) for name in which]
        st.caption(f"Budget: {budget:,} parameters ({layers or arch.layers} layers of "
                   f"{arch.name}). Ranks: " + ", ".join(f"{n} → r = {r} ({lora.lora_parameter_count(arch, t, r, layers).lora_params:,})"
                                                        for n, t, r in plan))
    if st.button("Train these", key="lora_which_go", type="primary"):
        with ui.friendly_errors("Starting the runs"):
            if not which:
                raise ValueError("Pick at least one configuration.")
            submit_runs([lora.LoraRunConfig(r=r, targets=tuple(t), **common) for _, t, r in plan],
                        "lora_which_ids", "comparison")
    if st.session_state["lora_which_ids"]:
        live_view("lora_which_ids", "lora_which", x_key="label")
        done = [r for r in run_rows(st.session_state["lora_which_ids"]) if r.status == jobs.DONE and r.summary]
        if done:
            table = results_table(done)[["matrices", "r", "trainable params", "held-out loss after",
                                         "token accuracy after", "task score after", "seconds"]]
            st.dataframe(table, hide_index=True, width="stretch")
            st.caption("Toy scale: one small task, one seed, few steps — differences of a few hundredths are "
                       "noise. The paper's Table 5 uses WikiSQL and MultiNLI on GPT-3.")
        which_runs = run_rows(st.session_state["lora_which_ids"])
        if not any(r.active for r in which_runs):
            by_targets = {tuple(r.config.get("targets", ())): r for r in which_runs}
            q_run, qv_run = by_targets.get(("q_proj",)), by_targets.get(("q_proj", "v_proj"))
            if q_run is None or qv_run is None:
                verdict = lessons.not_measured("C7", "include both W_q and W_q+W_v in the configurations")
            elif q_run.status != jobs.DONE or qv_run.status != jobs.DONE:
                bad = q_run if q_run.status != jobs.DONE else qv_run
                verdict = lessons.not_measured("C7", f"{bad.label} did not finish ({bad.reason or bad.status})")
            else:
                verdict = lora.qv_verdict(qv_run.summary, q_run.summary)
            claim_box(verdict)
    else:
        claim_box(lessons.not_measured("C7", "no comparison in this session yet: press 'Train these'"))


# ---------------------------------------------------------------------------------------------------
# 4. Inside ΔW
# ---------------------------------------------------------------------------------------------------
def finished_runs() -> list[jobs.Run]:
    runs = [r for r in results.runs(lora.LoraRunConfig, status=(jobs.DONE,)) if (r.summary or {}).get("adapter")]
    return [r for r in runs if bool(r.config.get("tiny_models")) == settings.tiny_models()]


def run_name(run: jobs.Run) -> str:
    cfg = run.config
    names = "+".join(lora.TARGET_NAMES.get(t, t) for t in cfg.get("targets", []))
    return f"r={cfg.get('r')} · {names} · {cfg.get('steps')} steps · α={cfg.get('alpha')} · {cfg.get('init')} · {run.id[-6:]}"


@st.cache_data(show_spinner=False, max_entries=16)
def _deltas(folder: str) -> list[lora.DeltaW]:
    return lora.adapter_deltas(folder)


with tab_inside:
    st.markdown("Open a trained adapter: the singular values of the scaled update ΔW = (α/r)·B A per layer and "
                "matrix, how many directions it really uses, whether two ranks learn the same directions "
                "(paper Section 7.2), and how ΔW relates to W0 (Section 7.3).")
    available = finished_runs()
    if not available:
        st.info("Train a sweep first (or any LoRA run): finished runs appear here.")
    else:
        by_id = {r.id: r for r in available}
        ids = list(by_id)
        with ui.friendly_errors("Reading the adapter"):
            chosen = st.selectbox("Adapter", ids, key="lora_inside_run", format_func=lambda i: run_name(by_id[i]),
                                  help="Any finished LoRA run of this app.")
            deltas = _deltas(by_id[chosen].summary["adapter"])
            if by_id[chosen].config.get("use_dora"):
                st.caption("DoRA run: ΔW below is the direction update (α/r)·BA; DoRA's per-row magnitude "
                           "rescaling comes on top of it.")
            if by_id[chosen].config.get("init") in ("pissa_niter_4", "olora"):
                st.caption("PiSSA/OLoRA run: the saved adapter was converted to a plain LoRA of rank 2r relative "
                           "to the original W0 (PEFT's path_initial_model_for_weight_conversion).")
            spectra = lora.delta_spectra(deltas)
            frame = pd.DataFrame(spectra)
            pivot = frame.pivot(index="matrix", columns="layer", values="effective rank")
            st.plotly_chart(charts.heatmap(pivot.values.tolist(), [str(c) for c in pivot.columns], list(pivot.index),
                                           title="Effective rank of ΔW (Roy & Vetterli) per layer and matrix",
                                           x="layer", y="", zmin=1), key="lora_inside_erank")
            names = [f"L{row['layer']} {row['matrix']}" for row in spectra]
            pick = st.multiselect("Singular values of", names, default=names[-2:], key="lora_inside_pick",
                                  help="Each line: the singular values of one ΔW, largest first.")
            series = {n: (list(range(1, len(row["singular values"]) + 1)), row["singular values"])
                      for n, row in zip(names, spectra) if n in pick}
            if series:
                st.plotly_chart(charts.curves(series, title="Spectrum of ΔW = (α/r)·BA", x="index i", y="σ_i"), key="lora_inside_spectrum")
            st.dataframe(frame.drop(columns=["singular values"]), hide_index=True, width="stretch", height=220)

            st.subheader("Subspace similarity between two ranks")
            st.markdown(r"$\phi(A_1, A_2, i, j) = \frac{\lVert U_{A_1}^{i\top} U_{A_2}^{j} \rVert_F^2}{\min(i, j)}$ — "
                        "1 when the top-i directions of one adapter lie inside the top-j of the other, 0 when "
                        "orthogonal. U are the right-singular vectors of A (Hu et al. 2021, Section 7.2, eq. 4).")
            c = st.columns(3)
            by_r = sorted(ids, key=lambda i: by_id[i].config.get("r", 0))
            first = c[0].selectbox("Adapter 1 (small r)", by_r, key="lora_sim_a", format_func=lambda i: run_name(by_id[i]),
                                   help="The paper compares r = 8 with r = 64.")
            second = c[1].selectbox("Adapter 2 (large r)", by_r, index=len(by_r) - 1, key="lora_sim_b",
                                    format_func=lambda i: run_name(by_id[i]))
            d1, d2 = _deltas(by_id[first].summary["adapter"]), _deltas(by_id[second].summary["adapter"])
            common_names = [d.name for d in d1 if d.name in {e.name for e in d2}]
            if not common_names:
                st.warning("These two adapters share no (layer, matrix); pick runs with the same targets and layers.")
            else:
                where = c[2].selectbox("Layer and matrix", common_names, index=len(common_names) - 1, key="lora_sim_where",
                                       help="The paper shows layer 48 of GPT-3's W_q and W_v.")
                a1 = next(d for d in d1 if d.name == where).A
                a2 = next(d for d in d2 if d.name == where).A
                grid = lora.similarity_grid(a1, a2, max_j=64)
                st.plotly_chart(charts.heatmap(grid, [str(j) for j in range(1, len(grid[0]) + 1)],
                                               [str(i) for i in range(1, len(grid) + 1)], zmin=0, zmax=1,
                                               title=f"φ(A_r={a1.shape[0]}, A_r={a2.shape[0]}, i, j) at {where}",
                                               x="j (directions of adapter 2)", y="i (directions of adapter 1)",
                                               text_fmt=".2f" if len(grid[0]) <= 16 else None),
                                key="lora_sim_heat")
                st.caption(f"For comparison, two random subspaces of ℝ^{a1.shape[1]} give φ ≈ max(i, j)/{a1.shape[1]} "
                           f"(e.g. {1 / a1.shape[1]:.3f} at i = j = 1). The paper finds the top direction of r = 8 and "
                           "r = 64 overlap with φ > 0.5: a very low rank captures what matters.")

            st.subheader("How ΔW relates to W0")
            layer_names = sorted({d.layer for d in deltas})
            layer = st.selectbox("Layer", layer_names, index=len(layer_names) - 1, key="lora_w0_layer",
                                 help="Project W0 onto ΔW's top singular directions (paper Table 7).")
            lm = ui.cached_model(by_id[chosen].config["model_key"])
            rows = lora.w0_table(lm, [d for d in deltas if d.layer == layer])
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
            st.caption("If ||U^T W0 V^T|| on ΔW's directions is much smaller than on W0's own top directions (and "
                       "near random), ΔW amplifies directions W0 has but does not emphasise; the amplification "
                       "factor ||ΔW||/||U^T W0 V^T|| says by how much. Paper, Table 7 (GPT-3 layer 48, W_q): "
                       "factor ≈ 21.5 for r = 4 and ≈ 6.9 for r = 64.")


# ---------------------------------------------------------------------------------------------------
# 5. Merge check
# ---------------------------------------------------------------------------------------------------
with tab_merge:
    st.markdown("After training, W = W0 + (α/r)·B A can be stored as one matrix: the merged model gives the same "
                "outputs at the base model's speed, whereas the unmerged one does two extra small matmuls per "
                "adapted matrix.")
    runs = finished_runs()
    options = ["random"] + [r.id for r in runs]
    by_id = {r.id: r for r in runs}
    c = st.columns([3, 1])
    merge_source = c[0].selectbox("Adapter", options, key="lora_merge_source",
                                  format_func=lambda i: "a random adapter (B random too, r = 8 on W_q, W_v)"
                                  if i == "random" else run_name(by_id[i]),
                                  help="A trained run's adapter, or one with random A and B so merging has an effect.")
    new_tokens = c[1].number_input("Tokens to generate", 4, 256, 24, key="lora_merge_tokens",
                                   help="Greedy generation timed unmerged, then merged.")
    prompts = st.text_area("Prompts (one per line)", "What is 12 + 30?\nName a colour.\nWhy is the sky blue?",
                           key="lora_merge_prompts", help="The logits of all of them are compared; the first one is "
                                                          "also generated from for the speed test.")
    if st.button("Merge and compare", key="lora_merge_go", type="primary"):
        with ui.friendly_errors("The merge check"):
            lines = [p for p in prompts.splitlines() if p.strip()]
            if not lines:
                raise ValueError("Type at least one prompt.")
            if merge_source == "random":
                lm = ui.cached_model(models.DEFAULT_CHAT_MODEL)
                model = lora.random_adapter(lm)
            else:
                from labs import adapters

                lm = ui.cached_model(by_id[merge_source].config["model_key"])
                model = adapters.load_adapter(lm, by_id[merge_source].summary["adapter"])
            with st.spinner("Comparing logits and timing generation…"):
                st.session_state["lora_merge_result"] = lora.merge_check(lm, model, lines, int(new_tokens))
    result = st.session_state["lora_merge_result"]
    if result:
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
                   "The difference is float rounding (about 1e-6 of the logits’ size in fp32): merging is exact up to the order of the arithmetic. "
                   "Speeds on this machine, now; other work on the machine shifts them.")
        c = st.columns(2)
        c[0].text_area("Unmerged output", result["text_unmerged"], disabled=True, key="lora_merge_out_a")
        c[1].text_area("Merged output", result["text_merged"], disabled=True, key="lora_merge_out_b")

ui.how_it_works(
    r"""
**LoRA** (Hu et al. 2021, eq. 3): $h = W_0 x + \Delta W x = W_0 x + \frac{\alpha}{r} B A x$, with
$B \in \mathbb{R}^{d \times r}$ zero-initialised and $A \in \mathbb{R}^{r \times k}$ Gaussian, so $\Delta W = 0$ at step 0.
PEFT's `LoraConfig(r, lora_alpha, target_modules, use_rslora, use_dora, init_lora_weights)` does the wiring; the page
trains copies of the shared model. **Trainable parameters** per matrix: $r(d + k)$ (+ $d$ for DoRA's magnitudes).
**Subspace similarity** (Section 7.2): $\phi(A_1, A_2, i, j) = \lVert U_{A_1}^{i\top} U_{A_2}^{j}\rVert_F^2 / \min(i, j)$.
**Relation to W0** (Section 7.3): project $W_0$ onto ΔW's top-r singular directions, $\lVert U^\top W_0 V^\top \rVert_F$;
amplification $= \lVert \Delta W \rVert_F / \lVert U^\top W_0 V^\top \rVert_F$.
**Effective rank** (Roy & Vetterli 2007): $\exp(-\sum_i p_i \log p_i)$ with $p_i = \sigma_i / \sum_j \sigma_j$.
""",
    lora.lora_parameter_count, lora.subspace_similarity, lora.similarity_grid, lora.w0_projection,
    paper="Hu et al. 2021, LoRA: Low-Rank Adaptation of Large Language Models, arXiv:2106.09685 · "
          "Kalajdzievski 2023 (rsLoRA) · Liu et al. 2024 (DoRA) · Meng et al. 2024 (PiSSA) · Büyükakyüz 2024 (OLoRA).",
)
