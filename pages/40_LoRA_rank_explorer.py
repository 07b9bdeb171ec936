"""Low-rank adaptation: count its parameters, sweep the rank r, and look inside the learned update ΔW = BA."""
from __future__ import annotations

import streamlit as st

import ui
from labs import models
from labs.core.errors import ConfigError
from labs.finetune import lora
from labs.models import adapters
from labs.runs import lessons
from ui.lessons import claim_box
from ui.lora import calculator as calculator_ui
from ui.lora import inside as inside_ui
from ui.lora import merge as merge_ui
from ui.lora import shared as shared_ui
from ui.lora import sweep as sweep_ui
from ui.lora import which as which_ui


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
tab_calc, tab_sweep, tab_which, tab_inside, tab_merge = st.tabs(
    ["Parameter calculator", "Rank sweep", "Which matrices", "Inside ΔW", "Merge check"])


def calculator_tab() -> None:
    st.markdown("Each adapted matrix W0 ∈ ℝ^{d×k} gets A (r×k) and B (d×r): **r (d + k)** trainable numbers "
                "instead of d·k. Nothing is trained here; the shapes come from the model's config.")
    c = st.columns([2, 3, 1, 1])
    source = c[0].selectbox("Model", [m.key for m in models.causal_models()] + ["gpt-like"], key="lora_calc_model",
                            format_func=lambda k: "GPT-3-like (enter dimensions)" if k == "gpt-like"
                            else models.spec(k).display_name,
                            help="Local models (packaged and from your models file) read their exact shapes from "
                                 "config.json; GPT-3-like builds a transformer from its width and depth.")
    try:
        calc_arch = None if source == "gpt-like" else shared_ui.architecture(source)
    except (models.ModelError, OSError, ValueError) as exc:
        st.error(f"Reading the shapes of {models.spec(source).display_name} did not work: {exc}")
        st.stop()
    options = list(lora.ALL_TARGETS[:4]) + ["up_proj", "down_proj"] if calc_arch is None else \
        shared_ui.target_options("lora_calc_targets", calc_arch)
    targets = c[1].multiselect("Matrices to adapt", options, default=shared_ui.default_targets(options),
                               key="lora_calc_targets", format_func=shared_ui.target_label,
                               help="The paper adapts only the attention query and value projections.")
    r = c[2].number_input("Rank r", 0, 100_000, 4, key="lora_calc_r",
                          help="Rank of ΔW = BA. The paper finds r = 1–8 already works for GPT-3.")
    layers = c[3].number_input("Layers (0 = all)", 0, 1000, 0, key="lora_calc_layers",
                               help="How many layers carry an adapter (0 = every layer).")
    c = st.columns(4)
    dora = c[0].checkbox("DoRA", False, key="lora_calc_dora",
                         help="DoRA adds one magnitude number per output row of each adapted matrix.")
    n_bytes = c[1].selectbox("Stored as", [2, 4], key="lora_calc_bytes",
                             format_func=lambda b: {2: "fp16/bf16 (2 bytes)", 4: "fp32 (4 bytes)"}[b],
                             help="Bytes per number in the checkpoint files.")
    tasks = c[2].number_input("Tasks", 1, 10_000, 100, key="lora_calc_tasks",
                              help="How many task-specific models you want to keep.")
    dims = calculator_ui.gpt_like_dimensions() if source == "gpt-like" else None
    with ui.friendly_errors("The parameter count"):
        arch = lora.gpt_like(*dims, name="GPT-3-like") if dims else shared_ui.architecture(source)
        count = lora.lora_parameter_count(arch, targets, int(r), int(layers) or None, use_dora=dora,
                                          bytes_per_param=int(n_bytes))
        calculator_ui.calculator_figures(arch, count, targets, int(layers) or None, int(tasks))
    calculator_ui.gpt3_box()


def sweep_tab() -> dict:
    """The rank sweep; returns the shared training settings (the which-matrices tab trains with them too)."""
    st.markdown("Train one adapter per rank on the same task and data, then compare. The paper (Table 6) finds "
                "that on GPT-3 even r = 1 or 2 nearly matches r = 64 for W_q + W_v.")
    common = sweep_ui.training_settings()
    c = st.columns([2, 3])
    ranks = c[0].multiselect("Ranks", list(lora.RANK_CHOICES), default=list(lora.SWEEP_RANKS), key="lora_ranks",
                             help="One background run per rank, one after another. Any two finished ranks feed the "
                                  "subspace-similarity view in 'Inside ΔW'; add r = 64 to compare 8 with 64 as the "
                                  "paper does.")
    options = list(lora.ALL_TARGETS)
    with ui.friendly_errors("Reading the model's matrices"):
        options = shared_ui.target_options("lora_targets", shared_ui.training_architecture(common["model_key"]))
    targets = c[1].multiselect("Matrices", options, default=shared_ui.default_targets(options), key="lora_targets",
                               format_func=shared_ui.target_label,
                               help="Where the adapters go. Matrices the model lacks are refused.")
    if st.button("Train the sweep", key="lora_sweep_go", type="primary"):
        with ui.friendly_errors("Starting the sweep"):
            if not ranks:
                raise ConfigError("Pick at least one rank.")
            configs = [lora.LoraRunConfig(r=int(r), targets=tuple(targets), **common) for r in sorted(ranks)]
            arch = shared_ui.training_architecture(common["model_key"])
            for cfg in configs:
                lora.validate_rank_targets(arch, cfg.targets, cfg.r)
            shared_ui.submit_runs(configs, "lora_sweep_ids", "sweep")
    if st.session_state["lora_sweep_ids"]:
        shared_ui.live_view("lora_sweep_ids", "lora_sweep")
        sweep_ui.sweep_results(shared_ui.run_rows(st.session_state["lora_sweep_ids"]))
    else:
        claim_box(lessons.not_measured("C6", "no sweep in this session yet: press 'Train the sweep'"))
    return common


def which_tab(common: dict) -> None:
    """Paper Table 5 at toy scale: one parameter budget spent on different matrices."""
    st.markdown("The same parameter budget spent on different matrices: the paper (Table 5) spends 18M "
                "parameters on GPT-3 as r = 8 on one matrix type, r = 4 on two or r = 2 on all four, and finds "
                "W_q + W_v (or all four) beats any single matrix. The rank here is chosen to fit the budget; "
                "the training settings are the sweep's. The default trains the two the claim compares; add "
                "'all four' for the paper's third column.")
    choices = lora.MATRIX_CHOICES
    c = st.columns([3, 1])
    which = c[0].multiselect("Configurations", list(choices), default=["W_q", "W_q+W_v"],
                             key="lora_which", help="One background run each, the same steps and data.")
    budget_r = c[1].number_input("Budget = r on W_q alone", 1, 512, 8, key="lora_which_budget_r",
                                 help="The budget is the parameter count of LoRA with this rank on W_q only.")
    plan = []
    with ui.friendly_errors("Planning the runs"):
        arch = shared_ui.training_architecture(common["model_key"])
        layers = min(common["last_layers"], arch.layers) or None
        budget = lora.lora_parameter_count(arch, ["q_proj"], int(budget_r), layers).lora_params
        plan = [(name, choices[name], lora.rank_for_budget(arch, choices[name], budget, layers)) for name in which]
        st.caption(f"Budget: {budget:,} parameters ({layers or arch.layers} layers of {arch.name}). Ranks: " +
                   ", ".join(f"{n} → r = {r} ({lora.lora_parameter_count(arch, t, r, layers).lora_params:,})"
                             for n, t, r in plan))
    if st.button("Train these", key="lora_which_go", type="primary"):
        with ui.friendly_errors("Starting the runs"):
            if not which:
                raise ConfigError("Pick at least one configuration.")
            if not plan:
                raise ConfigError("The runs could not be planned: fix the settings named above first.")
            shared_ui.submit_runs([lora.LoraRunConfig(r=r, targets=tuple(t), **common) for _, t, r in plan],
                                  "lora_which_ids", "comparison")
    if st.session_state["lora_which_ids"]:
        shared_ui.live_view("lora_which_ids", "lora_which", x_key="label")
        which_ui.which_results(shared_ui.run_rows(st.session_state["lora_which_ids"]))
    else:
        claim_box(lessons.not_measured("C7", "no comparison in this session yet: press 'Train these'"))


def inside_tab() -> None:
    st.markdown("Open a trained adapter: the singular values of the scaled update ΔW = (α/r)·B A per layer and "
                "matrix, how many directions it really uses, whether two ranks learn the same directions "
                "(paper Section 7.2), and how ΔW relates to W0 (Section 7.3).")
    available = shared_ui.finished_runs()
    if not available:
        st.info("Train a sweep first (or any LoRA run): finished runs appear here.")
        return
    by_id = {r.id: r for r in available}
    with ui.friendly_errors("Reading the adapter"):
        chosen = st.selectbox("Adapter", list(by_id), key="lora_inside_run",
                              format_func=lambda i: shared_ui.run_name(by_id[i]),
                              help="Any finished LoRA run of this app.")
        folder = by_id[chosen].summary["adapter"]
        deltas = inside_ui.deltas(folder)
        inside_ui.adapter_notes(by_id[chosen].config)
        inside_ui.spectra(folder)
        subspace_section(by_id)
        st.subheader("How ΔW relates to W0")
        layer_names = sorted({d.layer for d in deltas})
        layer = st.selectbox("Layer", layer_names, index=len(layer_names) - 1, key="lora_w0_layer",
                             help="Project W0 onto ΔW's top singular directions (paper Table 7).")
        lm = ui.cached_model(by_id[chosen].config["model_key"])
        inside_ui.w0_relation(lm, folder, layer)


def subspace_section(by_id: dict) -> None:
    """Paper Section 7.2: do a small and a large rank learn the same directions?"""
    st.subheader("Subspace similarity between two ranks")
    st.markdown(r"$\phi(A_1, A_2, i, j) = \frac{\lVert U_{A_1}^{i\top} U_{A_2}^{j} \rVert_F^2}{\min(i, j)}$ — "
                "1 when the top-i directions of one adapter lie inside the top-j of the other, 0 when "
                "orthogonal. U are the right-singular vectors of A (Hu et al. 2021, Section 7.2, eq. 4).")
    c = st.columns(3)
    by_r = sorted(by_id, key=lambda i: by_id[i].config.get("r", 0))
    first = c[0].selectbox("Adapter 1 (small r)", by_r, key="lora_sim_a", format_func=lambda i: shared_ui.run_name(
        by_id[i]), help="The paper compares r = 8 with r = 64.")
    second = c[1].selectbox("Adapter 2 (large r)", by_r, index=len(by_r) - 1, key="lora_sim_b",
                            format_func=lambda i: shared_ui.run_name(by_id[i]))
    d1, d2 = inside_ui.deltas(by_id[first].summary["adapter"]), inside_ui.deltas(by_id[second].summary["adapter"])
    common_names = [d.name for d in d1 if d.name in {e.name for e in d2}]
    if not common_names:
        st.warning("These two adapters share no (layer, matrix); pick runs with the same targets and layers.")
        return
    where = c[2].selectbox("Layer and matrix", common_names, index=len(common_names) - 1, key="lora_sim_where",
                           help="The paper shows layer 48 of GPT-3's W_q and W_v.")
    inside_ui.similarity(next(d for d in d1 if d.name == where).A, next(d for d in d2 if d.name == where).A, where)


def merge_tab() -> None:
    st.markdown("After training, W = W0 + (α/r)·B A can be stored as one matrix: the merged model gives the same "
                "outputs at the base model's speed, whereas the unmerged one does two extra small matmuls per "
                "adapted matrix.")
    by_id = {r.id: r for r in shared_ui.finished_runs()}
    c = st.columns([3, 1])
    source = c[0].selectbox("Adapter", ["random", *by_id], key="lora_merge_source",
                            format_func=lambda i: "a random adapter (B random too, r = 8 on W_q, W_v)"
                            if i == "random" else shared_ui.run_name(by_id[i]),
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
                raise ConfigError("Type at least one prompt.")
            if source == "random":
                lm = ui.cached_model(models.DEFAULT_CHAT_MODEL)
                model = lora.random_adapter(lm)
            else:
                lm = ui.cached_model(by_id[source].config["model_key"])
                model = adapters.load_adapter(lm, by_id[source].summary["adapter"])
            with st.spinner("Comparing logits and timing generation…"):
                st.session_state["lora_merge_result"] = lora.merge_check(lm, model, lines, int(new_tokens))
    if st.session_state["lora_merge_result"]:
        merge_ui.merge_figures(st.session_state["lora_merge_result"])


with tab_calc:
    calculator_tab()
with tab_sweep:
    shared_settings = sweep_tab()
with tab_which:
    which_tab(shared_settings)
with tab_inside:
    inside_tab()
with tab_merge:
    merge_tab()
shared_ui.how_lora()
