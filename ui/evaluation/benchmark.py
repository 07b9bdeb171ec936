"""The Benchmark (multiple choice) tab of the evaluation page: the note for endpoints (log-likelihood needs a local
model), the upload widgets, the scoring knobs, reading the questions, the results (accuracy, answer positions, subjects,
samples, downloads) and the speed check of shared-prefix scoring."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

import ui
from labs import models
from labs.data import benchmarks as bm
from labs.evaluation import benchmark, charts, scoring
from labs.runs import jobs
from labs.runs.results import load_result
from labs.runs.results import runs as runs_of
from ui.evaluation.shared import digest


P = "eval"


def endpoint_scoring_note(key: str) -> bool:
    """True (after saying why) when `key` is an endpoint: log-likelihood scoring needs a local model."""
    s = models.spec(key)
    if s.is_endpoint:
        st.warning(models.endpoint_refusal(s, "scored by log-likelihood (each choice's probability)"))
    return s.is_endpoint


def upload_widgets():
    """The test-file and optional dev-file uploaders, side by side."""
    u = st.columns(2)
    upload = u[0].file_uploader("Test file: MMLU-style CSV or HellaSwag-style JSONL", type=["csv", "jsonl", "json"],
                                key=f"{P}_upload",
                                help="MMLU CSV as found: question,A,B,C,D,answer with or without a header row "
                                     "(choice0..choice3, option_a..option_d and a 'choices' list are read too), "
                                     "answers as letters A–D or 0–3. HellaSwag JSONL: ctx, endings, label.")
    dev_upload = u[1].file_uploader("Dev file for k-shot examples (optional, same format)",
                                    type=["csv", "jsonl", "json"], key=f"{P}_dev_upload",
                                    help="Solved examples for the prompt, as MMLU's dev split. Without one, "
                                         "examples come from the app's bundled dev items — never from the "
                                         "questions being scored.")
    return upload, dev_upload


def scoring_knobs() -> tuple[str, int, int]:
    """What is scored (letters or the answer's words), k-shot, and how many items."""
    c = st.columns(3)
    choice_format = c[0].radio(
        "What is scored", scoring.CHOICE_FORMATS, key=f"{P}_format", horizontal=True,
        format_func={"letters": "the letter (MMLU)", "text": "the answer's words (cloze)"}.get,
        help="letters: the prompt lists A–D and we compare log p(' A') .. log p(' D') — MMLU's format. "
             "text: no options shown; we compare the likelihood of each answer's own words (the 'cloze' form, "
             "kinder to small models; acc_norm matters here because answers differ in length). "
             "HellaSwag uploads always score the endings.")
    k_shot = c[1].slider("Few-shot examples (k)", 0, 5, 0, key=f"{P}_k",
                         help="Solved examples from the dev split put before each question. MMLU reports 5-shot; "
                              "each example lengthens every prompt, so 0 keeps a 2-core run near a minute.")
    limit = c[2].number_input("Max items (0 = all)", 0, 50_000, 0, step=10, key=f"{P}_limit",
                              help="Score only N questions, taken in turn from each subject so every subject is covered: "
                                   "quick looks at big uploads.")
    return choice_format, k_shot, int(limit)


def read_questions(source: str, upload, dev_upload, k_shot: int):
    """(items, dev items, data digest, dataset name, dev name) from the bundled set or the uploads; a file that
    cannot be read is an error line and no items."""
    items, dev, data_digest, dataset, dev_name = [], [], "", "mini_mmlu", "bundled dev split"
    with ui.friendly_errors("Reading the questions"):
        if source == "Bundled mini benchmark":
            items, dev = bm.load_bundled("test"), bm.load_bundled("dev")
        elif upload is not None:
            data = upload.getvalue()
            loaded = bm.read_upload(data, upload.name)
            items = loaded.items
            data_digest, dataset = digest(data), upload.name
            st.caption(f"{len(items):,} questions in {len({i.subject for i in items})} subject(s) from "
                       f"{upload.name}. {loaded.columns}")
    if items and source == "Upload a file":
        with ui.friendly_errors("Reading the dev file"):
            if dev_upload is not None:
                dev_data = dev_upload.getvalue()
                dev_loaded = bm.read_upload(dev_data, dev_upload.name, id_prefix="dev/")
                dev, dev_name = dev_loaded.items, dev_upload.name
                data_digest += "+" + digest(dev_data)
                st.caption(f"Dev file {dev_upload.name}: {len(dev)} solved examples. {dev_loaded.columns}")
            else:
                style = "continuation" if items[0].style == "continuation" else "mmlu"
                dev, dev_name = bm.load_dev_pool(style), f"the app's bundled {style} dev items"
    if items:
        pool, repeated = bm.shot_pool(items, dev)
        if k_shot:
            st.caption(f"{k_shot}-shot examples come from {dev_name} ({len(pool)} items), never from the scored "
                       "questions" + (f"; {repeated} dev item(s) that also appear among the scored questions are "
                                      "left out." if repeated else "."))
    return items, dev, data_digest, dataset, dev_name


# -- benchmark: results -----------------------------------------------------------------------------------------------
def benchmark_results(run: jobs.Run) -> None:
    """Headline accuracy with its error bar, which answer the model picks, per-subject bars (with other runs),
    the sample viewer and the downloads."""
    loaded_run = load_result(run, partial=True)
    results = loaded_run.data if loaded_run else None
    if not (results and results["samples"]):
        return
    summary, overall = results["summary"], results["summary"]["overall"]
    if not results["complete"]:
        st.warning(f"Partial results: {overall['n']} of {results['total']} items were scored before the "
                   "run ended. The numbers below cover those items only.")
    norm_differs = summary.get("acc_norm_differs", True)
    _headline(overall, norm_differs)
    _answer_positions(results["samples"])
    if overall["acc"] - 2 * overall["acc_stderr"] <= overall["random"]:
        st.caption("The 95% interval (±2 s.e.) reaches down to random guessing: with this many items you "
                   "cannot tell this model from a coin — more items shrink the error bars as 1/√n.")
        if run.config.get("choice_format") == "letters":
            st.caption("Small models often know an answer but cannot point at its letter. Score 'the "
                       "answer's words (cloze)' to compare: the OLMES standard (Gu et al. 2024) reports "
                       "both formulations for this reason.")
    metric = st.radio("Bars show", ["acc", "acc_norm"], horizontal=True, key=f"{P}_bar_metric",
                      help="Which accuracy the per-subject chart shows.") if norm_differs else "acc"
    _subject_comparison(run.id, summary, metric)
    _sample_viewer(results["samples"])
    d = st.columns(2)
    d[0].download_button("Results (lm-eval-harness-style JSON)", json.dumps(results["harness"], indent=2),
                         file_name=f"{run.id}-results.json", key=f"{P}_dl_harness")
    d[1].download_button("Per-item log-likelihoods (JSONL)",
                         "\n".join(json.dumps(benchmark.sample_record(x)) for x in results["samples"]),
                         file_name=f"{run.id}-samples.jsonl", key=f"{P}_dl_samples")


def _headline(overall: dict, norm_differs: bool) -> None:
    m = st.columns(4 if norm_differs else 3)
    m[0].metric("acc", f"{overall['acc']:.1%}", help="Share of items where the right choice had the highest "
                f"log-likelihood. ± {overall['acc_stderr']:.1%} standard error.")
    m[0].caption(f"± {overall['acc_stderr']:.1%} (1 s.e.)")
    if norm_differs:
        m[1].metric("acc_norm", f"{overall['acc_norm']:.1%}", help="Same, after dividing each "
                    "log-likelihood by the choice's length in characters.")
        m[1].caption(f"± {overall['acc_norm_stderr']:.1%} (1 s.e.)")
    m[-2].metric("Random guessing", f"{overall['random']:.1%}", help="1 / number of choices, averaged.")
    m[-1].metric("Items", overall["n"])
    if not norm_differs:
        st.caption("No acc_norm here: every scored choice is a single letter, so dividing its log-likelihood "
                   "by its length cannot change which choice wins (acc_norm = acc). It matters when the "
                   "choices' own words are scored.")


def _answer_positions(samples) -> None:
    dist = scoring.answer_distribution(samples)
    a = st.columns([3, 2])
    a[0].plotly_chart(charts.answer_chart(dist), key=f"{P}_answer_chart")
    warning = scoring.same_answer_text(dist)
    if warning:
        a[1].warning(warning)
    else:
        a[1].caption(f"The model's most frequent pick is {dist['top']} ({dist['top_share']:.0%} of items; "
                     f"{dist['top_gold_share']:.0%} of the right answers are {dist['top']}). A model with no "
                     "preference for a position would pick each about as often as it is right.")


def _subject_comparison(run_id: str, summary: dict, metric: str) -> None:
    finished = runs_of(benchmark.BenchmarkConfig, status=(jobs.DONE, jobs.STOPPED))
    labels = {r.id: benchmark.run_label(r.config) for r in finished}
    compare = st.multiselect("Compare with other runs", [r.id for r in finished if r.id != run_id],
                             format_func=labels.get, key=f"{P}_compare",
                             help="Earlier benchmark runs (other models, adapters, k, formats) side by side.")
    series = {labels.get(run_id, run_id): summary}
    for other in compare:
        loaded = load_result(jobs.get(other), partial=True)
        if loaded and loaded.data["samples"]:
            series[labels[other]] = loaded.data["summary"]
    st.plotly_chart(charts.subject_chart(series, metric), key=f"{P}_subject_chart")


def _sample_viewer(samples) -> None:
    with st.expander("Sample viewer: each choice's log-likelihood", expanded=False):
        only_wrong = st.checkbox("Only items the model got wrong", key=f"{P}_only_wrong")
        shown = [s for s in samples if not only_wrong or s.acc == 0] or samples
        idx = st.selectbox("Item", range(len(shown)), key=f"{P}_sample",
                           format_func=lambda i: f"{shown[i].id}: {shown[i].choice_texts[shown[i].answer][:40]}"
                                                 f" {'✓' if shown[i].acc else '✗'}")
        s = shown[min(idx, len(shown) - 1)]
        st.code(s.prompt, language=None)
        st.dataframe(pd.DataFrame(benchmark.sample_rows(s)), hide_index=True, key=f"{P}_sample_table")


def speed_check(items, disabled: bool, model_key: str, choice_format: str, k_shot: int, dev) -> None:
    """Time the shared-prefix batched scoring against one pass per choice on 8 questions."""
    with st.expander("Speed: one forward pass per item instead of one per choice", expanded=False):
        st.markdown("The prompt is the same for all choices, so its forward pass (and KV cache) is computed once "
                    "and the choices run as one small batch on top. This button times both ways on 8 questions.")
        if st.button("Measure", key=f"{P}_speed", disabled=not items or disabled):
            with ui.friendly_errors("Measuring"), st.spinner("Timing both ways…"):
                lm = ui.cached_model(model_key)
                speed = benchmark.throughput(lm, items[:8], choice_format, k_shot, dev)
                s = st.columns(3)
                s[0].metric("Shared prefix, batched", f"{speed['fast_items_per_s']:.1f} items/s")
                s[1].metric("One pass per choice", f"{speed['naive_items_per_s']:.1f} items/s")
                s[2].metric("Speed-up", f"{speed['speedup']:.1f}×")
