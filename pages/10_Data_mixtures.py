"""Pre-training data mixtures: token budgets and epochs per source, labels as shifted inputs, a tiny GPT trained live on your mix."""
from __future__ import annotations

import functools

import streamlit as st

import ui
from labs import models
from labs.data import corpora
from labs.mixtures import calculator, charts, comparison, filtering, next_token, pretrain
from labs.mixtures.gpt import GPT
from labs.runs import jobs, lessons, results
from ui import mixtures as mix_ui
from ui.lessons import claim_box, pending
from ui.runs import compare_runs, start_button


ICON = "🧬"
NEXT_TOKEN_MODEL = models.DEFAULT_CHAT_MODEL
DEFAULT_WEIGHTS = {"code": 40, "prose": 40, "arithmetic": 20, "web": 0}

ui.page_header(
    "Data mixtures",
    "A pre-training set is a **mixture** of sources — web crawl, books, code, Wikipedia — each sampled with a "
    "**weight**. The weight and the total token **budget** decide how many times each source is read "
    "(its **epochs**): small, high-quality sources are often repeated, huge crawls are not even read once. "
    "The model itself only ever learns one thing: predict the next token (the **labels are the inputs "
    "shifted by one**). Below you compute the published GPT-3 and LLaMA mixtures, look at next-token labels "
    "with a real tokenizer, then train a tiny GPT on a mixture of your own and watch each domain's loss.",
    ICON,
)
ui.init_state("mix", run_id=None, q_run_id=None, next_rows=None, next_check=None, calc_rows=None)


def calc_tab() -> None:
    presets = {p.title: p for p in calculator.PRESETS.values()}
    c1, c2, c3 = st.columns([2, 1, 1])
    preset_title = c1.selectbox("Preset", list(presets) + ["Custom (start from GPT-3)"], key="mix_preset",
                                help="Published mixtures, with the paper's own numbers. 'Custom' starts from GPT-3 "
                                     "for you to edit.")
    preset = presets.get(preset_title, calculator.GPT3)
    is_preset = preset_title in presets
    pkey = preset.key if is_preset else "custom"  # a fresh editor and budget per preset
    budget = c2.number_input("Token budget (billions)", min_value=0.001, max_value=1e6, value=float(preset.budget_b),
                             step=100.0, key=f"mix_budget_{pkey}",
                             help="Total tokens the model trains on. GPT-3: 300B; LLaMA-1 33B/65B: 1.4T "
                                  "(7B/13B: 1.0T); Llama 2: 2T; Llama 3: 15T.")
    threshold = c3.number_input("Flag above (epochs)", min_value=1.0, max_value=100.0, value=4.0, step=0.5,
                                key="mix_threshold",
                                help="Sources read more often than this are flagged. Up to ~4 epochs is almost as "
                                     "good as fresh data (Muennighoff et al. 2023); the lecture's sweet spot is 1-2.")
    st.caption(f"Source: {preset.citation}." + ("" if is_preset else " Custom: edit anything."))
    edited = mix_ui.mixture_editor(preset, pkey)
    rows = None
    with ui.friendly_errors("The calculator"):
        rows, messages = calculator.mixture_table(mix_ui.sources_from_editor(edited), budget, threshold)
        st.session_state["mix_calc_rows"] = rows
        for m in messages:
            (st.warning if "repeated" in m else st.info)(m)
    if rows:
        mix_ui.mixture_rows(rows, threshold, preset.note if is_preset else None)
    if preset_title == calculator.GPT3.title:
        claim_box(lessons.mixture_epochs(rows, source=calculator.GPT3.citation) if rows else
                  lessons.not_measured("C1", "the calculator has no rows: fix the table above"),
                  note=f"Published figures: {calculator.GPT3.citation}.")
    st.plotly_chart(charts.growth_chart(), key="mix_growth_chart")
    st.caption("Sources: " + "; ".join(f"{r['model']}: {r['source']}" for r in calculator.growth_rows())
               + f". Chinchilla's compute-optimal rule is ~{calculator.CHINCHILLA_TOKENS_PER_PARAM} tokens per "
               "parameter; Llama 3 trains far past it. Phi-3-mini (green) makes the *quality* point: 3.8B "
               "parameters on 3.3T heavily filtered and synthetic tokens rival much larger models.")


def next_token_tab() -> None:
    st.markdown("A causal language model is trained to predict **token t+1 from tokens 1..t**. The labels are "
                "the inputs shifted left by one, and the loss is −ln p(label) at every position. Tokens come from "
                f"the real **{models.spec(NEXT_TOKEN_MODEL).display_name}** tokenizer; the loss from that model.")
    text = st.text_area("Sentence", next_token.DEFAULT_SENTENCE, key="mix_sentence", max_chars=2000,
                        help="Any text; the first 64 tokens are scored.")
    if st.button("Tokenize and score", key="mix_next_go", type="primary",
                 help="Runs one forward pass of the model over your sentence."):
        with ui.friendly_errors("Scoring the sentence"):
            lm = ui.cached_model(NEXT_TOKEN_MODEL)
            st.session_state["mix_next_rows"] = next_token.next_token_rows(lm, text)
            st.session_state["mix_next_check"] = next_token.shift_check(lm, text)
    nrows = st.session_state["mix_next_rows"]
    if not nrows:
        return
    mix_ui.next_token_grid(nrows)
    st.caption("In transformers you pass labels = input_ids; the model shifts them inside its loss. "
               "The first token never gets a loss: nothing comes before it to predict it from.")
    check = st.session_state["mix_next_check"]
    claim_box(lessons.labels_shifted([r["loss"] for r in nrows], *check) if check else
              lessons.not_measured("C2", "press 'Tokenize and score' again to compare with the model's own loss"),
              note="'Unshifted' scores each token at its own position: what the loss would be without the shift.")


def run_settings(domains: list[str], current: dict) -> dict:
    """The training knobs under the weight sliders, as MixtureRunConfig keyword arguments."""
    a1, a2, a3, a4 = st.columns(4)
    steps = a1.number_input("Steps", 10, 20000, 1000, step=50, key="mix_steps",
                            help="Optimizer steps of 16 x 64 bytes. The time grows with the steps (and while "
                                 "others train); the run shows its own seconds as it goes.")
    size = a2.selectbox("Model size", list(pretrain.SIZES), index=list(pretrain.SIZES).index(pretrain.DEFAULT_SIZE),
                        key="mix_size", help="Layers x width of the GPT. Bigger learns more per step but each "
                                             "step is slower.")
    lr = a3.select_slider("Learning rate", [3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1.0, 100.0], value=3e-3, key="mix_lr",
                          help="AdamW peak rate (warm-up then cosine). 1.0 and 100 are there to see training "
                               "diverge: the run stops and says why.")
    seed = a4.number_input("Seed", 0, 10_000, 0, key="mix_seed", help="Same settings and seed replay the stored run.")
    b1, b2, b3, b4 = st.columns(4)
    eval_every = b1.number_input("Evaluate every", 5, 1000, 50, key="mix_eval_every",
                                 help="Steps between per-domain validation points.")
    sample_every = b2.number_input("Sample every", 10, 5000, 250, key="mix_sample_every",
                                   help="Steps between text samples from the model (one per domain, in the log).")
    quality = b3.toggle("Quality filter", False, key="mix_filter",
                        help="Exact and near dedup + heuristics on the training text (short, repetitive, "
                             "symbol-heavy documents dropped). Validation text is always filtered, so runs compare.")
    repeat = b4.selectbox("Repeat a small domain", ["(none)"] + domains, key="mix_repeat_domain",
                          help="Cut one domain's training text to a few KB so it is read many epochs: its train "
                               "loss keeps falling while its validation loss turns up (overfitting).")
    if quality:
        with ui.friendly_errors("The quality filter"):
            mix_ui.builtin_filter_table(current)
    repeat_kb = 4
    if repeat != "(none)":
        repeat_kb = st.slider("KB of text kept for the repeated domain", 1, 64, 4, key="mix_repeat_kb",
                              help="Smaller = more epochs over the same bytes.")
    return dict(steps=int(steps), size=size, lr=float(lr), eval_every=int(eval_every),
                sample_every=int(sample_every), quality_filter=bool(quality),
                repeat_domain="" if repeat == "(none)" else repeat, repeat_kb=int(repeat_kb), seed=int(seed))


def train_tab() -> None:
    st.markdown("Train a small GPT (from scratch, byte-level) on a mixture of real text. Each domain keeps a "
                "held-out validation set, so you can watch **each domain's loss** fall — faster for the domains "
                "you weight up, and not at all below chance for a domain at weight 0. Bytes, not the SmolLM2 "
                "tokenizer: 256 ids keep the model tiny (a 49k-token vocabulary would be most of its weights) and "
                "any upload encodes.")
    uploaded = st.file_uploader("Extra domains (.txt or .jsonl with a \"text\" field)", type=["txt", "jsonl"],
                                accept_multiple_files=True, key="mix_upload",
                                max_upload_size=corpora.MAX_UPLOAD_BYTES // 2**20,
                                help=f"Each file becomes a domain. Up to {corpora.MAX_UPLOAD_BYTES // 2**20} MB; "
                                     "a tiny run reads a few hundred KB.")
    current = mix_ui.uploaded_domains(uploaded)
    domains = list(corpora.BUILTIN_DOMAINS) + list(current)
    raw_weights = mix_ui.weight_sliders(domains, DEFAULT_WEIGHTS, current)
    knobs = run_settings(domains, current)
    if start_button("Train on this mixture", key="mix_train", current_id=st.session_state["mix_run_id"],
                    disabled=sum(raw_weights) <= 0,
                    help="Starts a background run; you can leave the page and come back.",
                    busy="Your previous run is still going: stop it (button below) or wait for it to finish."):
        with ui.friendly_errors("Starting the run"):
            picked = [(d, float(w)) for d, w in zip(domains, raw_weights) if w > 0 or d != corpora.NOISY_DOMAIN]
            cfg = pretrain.MixtureRunConfig(domains=tuple(d for d, _ in picked), weights=tuple(w for _, w in picked),
                                            uploads=tuple(pretrain.upload_entry(n, d) for n, d in current.items()),
                                            **knobs)
            fn = functools.partial(pretrain.train_mixture, uploads=dict(current))
            st.session_state["mix_run_id"] = jobs.submit(cfg, fn, owner=ui.session_id(), label="Mixture GPT")
    if run_id := st.session_state["mix_run_id"]:
        mix_ui.live_run(run_id, domains)
    else:
        pending("C3", None, "pick a domain under 'Repeat a small domain' and train")


def quality_tab() -> None:
    st.markdown("The *web* domain is built like a scraped crawl: clean pages mixed with boilerplate, near-duplicate "
                "copies and junk, each document labelled. Two identical tiny GPTs train for the **same steps** from "
                "the same weights, one on all of it, one on what the quality filter keeps; both are scored on the "
                "same clean held-out pages.")
    mix_ui.noisy_domain_table()
    knobs = mix_ui.quality_controls()
    if start_button("Compare with and without the filter (equal steps)", key="mix_q_go", busy="It is still going.",
                    current_id=st.session_state["mix_q_run_id"], help="Trains both side by side in the background."):
        with ui.friendly_errors("Starting the comparison"):
            cfg = comparison.QualityComparisonConfig(**knobs)
            st.session_state["mix_q_run_id"] = jobs.submit(cfg, comparison.run_quality_comparison,
                                                           owner=ui.session_id(), label="Quality filter A/B")
    if st.session_state["mix_q_run_id"]:
        ui.run_panel(st.session_state["mix_q_run_id"], mix_ui.QUALITY_CURVES, prefix="mix_q", smoothing=0.0,
                     extra=mix_ui.quality_outcome)
    else:
        pending("M4", None, "press 'Compare with and without the filter (equal steps)'")


def compare_tab() -> None:
    runs = results.runs(pretrain.MixtureRunConfig, with_metrics=True)
    if not runs:
        st.caption("Finished runs of the tiny GPT appear here; train two mixtures to overlay them.")
        return
    keys = sorted({k for r in runs for m in r.metrics for k in m if k.startswith(("val_", "train_"))} | {"loss"})
    compare_runs(runs, key="mix_compare", label=mix_ui.run_label, metrics=keys,
                 default_metric=next((k for k in keys if k.startswith("val_")), keys[0]),
                 metric_key="mix_compare_metric", chart_key="mix_compare_chart", title="",
                 help="Overlay the same curve from several runs.",
                 metric_help="val_<domain> is that domain's held-out loss; loss is the training loss on mixed batches.")


tab_calc, tab_next, tab_train, tab_quality, tab_compare = st.tabs(
    ["Mixture calculator", "Next-token labels", "Train a tiny GPT", "Quality vs quantity", "Compare runs"])
with tab_calc:
    calc_tab()
with tab_next:
    next_token_tab()
with tab_train:
    train_tab()
with tab_quality:
    quality_tab()
with tab_compare:
    compare_tab()

ui.how_it_works(
    r"""
**Budget arithmetic.** With weights $w_i$ (summing to 1), budget $B$ and source sizes $N_i$ tokens:
$\text{tokens}_i = w_i B$ and $\text{epochs}_i = w_i B / N_i$ — GPT-3's Common Crawl: $0.6 \times 300\text{B} /
410\text{B} = 0.44$ epochs; Wikipedia: $0.03 \times 300 / 3 = 3$ (published 3.4, because the printed weights are rounded).

**Sampling by weights.** Each training sequence first draws its domain $i \sim \text{Categorical}(w)$, then a
random window of that domain's text. **Next-token loss** (labels = inputs shifted by one):
$\mathcal{L} = -\frac{1}{T}\sum_t \ln p_\theta(x_{t+1} \mid x_{\le t})$, reported per domain on held-out text.
The model is GPT-2's recipe in miniature (Radford et al. 2019): pre-norm blocks, causal self-attention
$\text{softmax}(QK^\top/\sqrt{d})V$ (Vaswani et al. 2017, eq. 1), tied embeddings, AdamW with warm-up and cosine decay.

**Quality filter.** Exact and near-duplicates (the key below: CCNet's normalisation), then Gopher's rules: too short,
mostly repeated lines, mostly symbols. At equal steps the filtered run reads fewer distinct bytes, all of them clean.
""",
    calculator.mixture_table, pretrain.get_batch, filtering.near_duplicate_key, GPT.forward,
    paper="Brown et al. 2020 (GPT-3, Table 2.2); Touvron et al. 2023 (LLaMA, Table 1); Muennighoff et al. 2023 "
          "(Scaling Data-Constrained Language Models); Rae et al. 2021 (Gopher quality filters, App. A); "
          "Wenzek et al. 2020 (CCNet); Lee et al. 2022 (Deduplicating Training Data); Abdin et al. 2024 (Phi-3).",
)
