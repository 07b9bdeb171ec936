"""Helpers several tabs of the LoRA rank explorer use: the chosen model's matrices and shapes (calculator, sweep, which
matrices), a group of runs started, watched live and tabulated (Rank sweep and Which matrices tabs), and the finished
runs with an adapter and their names (Inside ΔW and Merge check tabs)."""
from __future__ import annotations

import functools
import time

import pandas as pd
import streamlit as st

import ui
from labs import models
from labs.core import charts, settings
from labs.finetune import lora
from labs.runs import jobs, results
from ui.runs import group_progress, watch_group


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


def how_lora() -> None:
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
