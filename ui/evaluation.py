"""Widgets and drawing for the evaluation page: adapter pickers, the benchmark's question source, the benchmark,
Q&A, judge and diversity results, the contamination report. Also the helpers that are not drawing but not a lesson
either (upload digests, the training corpus as text). The lesson lives in labs/evaluation/__init__.py."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import streamlit as st

import ui
from labs.models import adapters
from labs.runs import jobs
from labs.runs import lessons
from labs import models
from labs import evaluation as ev
from labs.data import ASSETS
from labs.data import benchmarks as bm
from labs.runs.results import generated_rows, load_result, runs as runs_of
from ui.lessons import claim_box

P = "eval"


def training_corpus(sources: dict[str, Path], picked: list[str]) -> dict[str, str]:
    """The chosen training-data files as text (name -> text); bytes that are not UTF-8 are replaced, not fatal."""
    return {name: Path(sources[name]).read_text(encoding="utf-8", errors="replace") for name in picked}


def digest(data: bytes) -> str:
    """A short fingerprint of an uploaded file: the same file replays its stored run."""
    return hashlib.sha256(data).hexdigest()[:16]


def endpoint_scoring_note(key: str) -> bool:
    """True (after saying why) when `key` is an endpoint: log-likelihood scoring needs a local model."""
    s = models.spec(key)
    if s.is_endpoint:
        st.warning(models.endpoint_refusal(s, "scored by log-likelihood (each choice's probability)"))
    return s.is_endpoint


def active(run_id: str | None) -> bool:
    run = jobs.get(run_id) if run_id else None
    return bool(run and run.active)


def adapter_choice(model_key: str, key: str) -> str:
    """A select box of saved adapters for this base model; '' = the base model alone."""
    found = adapters.list_adapters(base_model=model_key)
    options = [""] + [a.path for a in found]
    labels = {"": "(base model, no adapter)", **{a.path: f"{a.label} · {a.page}" for a in found}}
    return st.selectbox("Adapter", options, format_func=labels.get, key=key,
                        help="LoRA adapters saved by the fine-tuning pages (SFT, DPO, LoRA) for this base model. "
                             "The adapter is applied to a private copy; the shared model stays untouched.")


# -- benchmark: the questions -----------------------------------------------------------------------------------------
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
        "What is scored", ev.CHOICE_FORMATS, key=f"{P}_format", horizontal=True,
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
                         "\n".join(json.dumps(ev.sample_record(x)) for x in results["samples"]),
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
    dist = ev.answer_distribution(samples)
    a = st.columns([3, 2])
    a[0].plotly_chart(ev.answer_chart(dist), key=f"{P}_answer_chart")
    warning = ev.same_answer_text(dist)
    if warning:
        a[1].warning(warning)
    else:
        a[1].caption(f"The model's most frequent pick is {dist['top']} ({dist['top_share']:.0%} of items; "
                     f"{dist['top_gold_share']:.0%} of the right answers are {dist['top']}). A model with no "
                     "preference for a position would pick each about as often as it is right.")


def _subject_comparison(run_id: str, summary: dict, metric: str) -> None:
    finished = runs_of(ev.BenchmarkConfig, status=(jobs.DONE, jobs.STOPPED))
    labels = {r.id: ev.run_label(r.config) for r in finished}
    compare = st.multiselect("Compare with other runs", [r.id for r in finished if r.id != run_id],
                             format_func=labels.get, key=f"{P}_compare",
                             help="Earlier benchmark runs (other models, adapters, k, formats) side by side.")
    series = {labels.get(run_id, run_id): summary}
    for other in compare:
        loaded = load_result(jobs.get(other), partial=True)
        if loaded and loaded.data["samples"]:
            series[labels[other]] = loaded.data["summary"]
    st.plotly_chart(ev.subject_chart(series, metric), key=f"{P}_subject_chart")


def _sample_viewer(samples) -> None:
    with st.expander("Sample viewer: each choice's log-likelihood", expanded=False):
        only_wrong = st.checkbox("Only items the model got wrong", key=f"{P}_only_wrong")
        shown = [s for s in samples if not only_wrong or s.acc == 0] or samples
        idx = st.selectbox("Item", range(len(shown)), key=f"{P}_sample",
                           format_func=lambda i: f"{shown[i].id}: {shown[i].choice_texts[shown[i].answer][:40]}"
                                                 f" {'✓' if shown[i].acc else '✗'}")
        s = shown[min(idx, len(shown) - 1)]
        st.code(s.prompt, language=None)
        st.dataframe(pd.DataFrame(ev.sample_rows(s)), hide_index=True, key=f"{P}_sample_table")


def speed_check(items, disabled: bool, model_key: str, choice_format: str, k_shot: int, dev) -> None:
    """Time the shared-prefix batched scoring against one pass per choice on 8 questions."""
    with st.expander("Speed: one forward pass per item instead of one per choice", expanded=False):
        st.markdown("The prompt is the same for all choices, so its forward pass (and KV cache) is computed once "
                    "and the choices run as one small batch on top. This button times both ways on 8 questions.")
        if st.button("Measure", key=f"{P}_speed", disabled=not items or disabled):
            with ui.friendly_errors("Measuring"), st.spinner("Timing both ways…"):
                lm = ui.cached_model(model_key)
                speed = ev.throughput(lm, items[:8], choice_format, k_shot, dev)
                s = st.columns(3)
                s[0].metric("Shared prefix, batched", f"{speed['fast_items_per_s']:.1f} items/s")
                s[1].metric("One pass per choice", f"{speed['naive_items_per_s']:.1f} items/s")
                s[2].metric("Speed-up", f"{speed['speedup']:.1f}×")


# -- Q&A, judge, diversity --------------------------------------------------------------------------------------------
def qa_results(run: jobs.Run | None) -> None:
    generated = load_result(run)
    if generated is None or not generated.rows:
        return
    out = generated.rows
    m = st.columns(3)
    for col, name in zip(m, ("exact_match", "contains", "regex")):
        col.metric(name, f"{sum(r[name] for r in out) / len(out):.0%}")
    st.dataframe(pd.DataFrame(out)[["prompt", "answer", "output", "prediction", "exact_match", "contains",
                                    "regex"]], hide_index=True, key=f"{P}_gen_table")


def forget_removed_models(causal: list[str]) -> None:
    """Drop a picked model that is no longer offered (an entry removed from the models file)."""
    for key in (f"{P}_model", f"{P}_gen_model", f"{P}_judge_model", f"{P}_div_model"):
        if st.session_state.get(key) not in causal:
            st.session_state.pop(key, None)


def judge_picker(causal: list[str], names: dict[str, str]) -> tuple[str, str]:
    """The judge model and the pairs it judges: known pairs, or the two latest finished Q&A runs."""
    c = st.columns(2)
    judge_key = c[0].selectbox("Judge model", causal, format_func=names.get, key=f"{P}_judge_model",
                               help="Real evaluations use a much stronger judge (GPT-4-class) than the model judged. "
                                    "A local judge is read by its probabilities of 1 and 2; an endpoint judge by the "
                                    "number it writes (it gives no probabilities).")
    gen_runs = runs_of(ev.GenerativeConfig, status=(jobs.DONE,))
    sources = ["known"] + ([f"runs:{a.id},{b.id}" for a, b in [(gen_runs[0], gen_runs[1])]] if len(gen_runs) >= 2 else [])
    pairs_source = c[1].radio("Pairs", sources, key=f"{P}_judge_pairs",
                              format_func=lambda s: "Known pairs: reference vs a wrong answer" if s == "known" else
                              "Your two latest Q&A runs, answer vs answer",
                              help="Two finished Q&A runs (e.g. two models) unlock the model-vs-model option.")
    return judge_key, pairs_source


def judge_pairs(pairs_source: str, rows: list[dict]) -> list:
    """The pairs to judge: reference vs a wrong answer, or the answers of two Q&A runs side by side."""
    if pairs_source == "known":
        return ev.known_pairs(rows)
    a_id, b_id = pairs_source.removeprefix("runs:").split(",")
    return ev.run_pairs(generated_rows(jobs.get(a_id)), generated_rows(jobs.get(b_id)))


def judge_not_measured(run: jobs.Run | None) -> None:
    """C13's box while there is no finished judge run (none yet, or the last one failed or was stopped)."""
    if run is None or (not run.active and run.status != jobs.DONE):
        claim_box(lessons.not_measured("C13", "no finished judge run yet: press Judge on the known pairs" if
                                       run is None else f"the judge run did not finish "
                                       f"({run.reason or run.status})"))


def judge_results(run: jobs.Run | None, judge_name: str, names: dict[str, str]) -> None:
    """Accuracy, position bias, slot preference, length bias and ties; the C13 claim box; every judgment."""
    judged_result = load_result(run)
    if judged_result is None:
        return
    judged = judged_result.data
    rates = judged["rates"]
    if not rates:
        return
    m = st.columns(5)
    if "accuracy" in rates:
        m[0].metric("Accuracy on known pairs", f"{rates['accuracy']:.0%}",
                    help="Ties count as wrong. A judge that always says 'tie' scores 0%.")
    m[1].metric("Position bias", f"{rates['position_bias']:.0%}",
                help="Pairs where the judge picked the same slot in both orders (its verdict followed "
                     "the position, not the content). 0% = never.")
    m[2].metric("Picks slot 1", f"{rates['first_slot']:.0%}", help="50% = no preference for a slot.")
    m[3].metric("Longer answer wins", "–" if rates["length_bias"] != rates["length_bias"]
                else f"{rates['length_bias']:.0%}",
                help=f"Among {rates['decided_with_length_gap']} decided pairs of different lengths. "
                     "50% = no length preference.")
    m[4].metric("Ties", f"{rates['ties']:.0%}")
    st.warning(ev.judge_verdict_text(rates, judge_name))
    if run.config.get("pairs_source") == "known":
        claim_box(lessons.judge_position_bias(round(rates["position_bias"] * rates["pairs"]), rates["pairs"]),
                  note=f"Measured on {names.get(run.config.get('judge_key'), 'the judge')}; "
                       f"it picked slot 1 in {rates['first_slot']:.0%} of its judgments.")
    else:
        claim_box(lessons.not_measured("C13", "this run judged two models' answers, whose better answer "
                                              "is unknown: judge the known pairs to measure it"))
    st.dataframe(pd.DataFrame(judged["records"])[
        [k for k in ("question", "a", "b", "gold", "pick_ab", "pick_ba", "verdict")
         if k in judged["records"][0]]], hide_index=True, key=f"{P}_judge_table")


def diversity_results(run: jobs.Run | None) -> None:
    div_result = load_result(run)
    if div_result is None or not div_result.data["table"]:
        return
    div = div_result.data
    st.plotly_chart(ev.diversity_chart(div["table"]), key=f"{P}_div_chart")
    st.dataframe(pd.DataFrame(div["table"]), hide_index=True, key=f"{P}_div_table")
    with st.expander("The samples"):
        for t, texts in div["samples"].items():
            st.markdown(f"**T = {t}**")
            st.text("\n".join(f"{i + 1}. {x.strip()}" for i, x in enumerate(texts)))


def diversity_knobs(causal: list[str], names: dict[str, str]) -> tuple[dict, bool]:
    """The sampling widgets as DiversityConfig's fields, and whether to measure embedding self-similarity."""
    c = st.columns(4)
    div_model = c[0].selectbox("Model", causal, format_func=names.get, key=f"{P}_div_model",
                               help="The model to sample from.")
    temps = c[1].multiselect("Temperatures", [0.2, 0.5, 0.7, 1.0, 1.3, 1.5, 2.0], [0.2, 0.7, 1.0, 1.5],
                             key=f"{P}_div_temps", help="Each temperature gets its own set of samples.")
    n_samples = c[2].slider("Samples per temperature", 2, 10, 4, key=f"{P}_div_n",
                            help="More samples = steadier numbers, longer run (~1 s per sample on 2 cores).")
    div_tokens = c[3].slider("Tokens per sample", 8, 80, 24, key=f"{P}_div_tokens", help="Length of each sample.")
    div_prompt = st.text_input("Prompt", "Write one sentence about the sea.", key=f"{P}_div_prompt",
                               help="The same prompt is sampled every time.")
    use_embed = st.checkbox("Embedding self-similarity (loads all-MiniLM-L6-v2)", True, key=f"{P}_div_embed",
                            help="Off: only the word-overlap measures.")
    return dict(model_key=div_model, prompt=div_prompt, temperatures=tuple(sorted(temps)), samples=n_samples,
                max_new_tokens=div_tokens), use_embed


# -- contamination ----------------------------------------------------------------------------------------------------
def contamination_texts(eval_set: str, items) -> list[tuple[str, str]]:
    """(id, text) of every item to look for: the bundled benchmark and Q&A, or the benchmark chosen above."""
    if eval_set == "Bundled mini benchmark + Q&A":
        texts = [(i.id, ev.item_text(i)) for i in bm.load_bundled("test")]
        texts += [(f"qa-{k}", f"{r['prompt']} {r['answer']}") for k, r in enumerate(bm.load_bundled_generative())]
    else:
        texts = [(i.id, ev.item_text(i)) for i in items]
    if not texts:
        raise ValueError("The eval set is empty: choose or upload a benchmark first.")
    return texts


def contamination_knobs():
    """(n-gram length, eval set, training files by name, the picked ones, pasted text)."""
    c = st.columns(2)
    n_gram = c[0].slider("n-gram length (words)", 3, 13, 8, key=f"{P}_contam_n",
                         help="Shorter n finds more overlap, including harmless phrases ('what is the capital of').")
    eval_set = c[1].radio("Eval set", ["Bundled mini benchmark + Q&A", "The benchmark chosen above"],
                          key=f"{P}_contam_set", help="Which questions to look for in the training data.")
    sources = ev.training_sources(ASSETS)
    picked = st.multiselect("Training data from the other labs", list(sources), list(sources), key=f"{P}_contam_src",
                            help="Text files under assets/ (this page's own eval/ folder excluded).")
    pasted = st.text_area("Extra training text (optional)", "", key=f"{P}_contam_paste", height=80,
                          help="Paste text here, e.g. copy a few benchmark questions in, to see them flagged.")
    return n_gram, eval_set, sources, picked, pasted


def contamination_report(report: dict) -> None:
    m = st.columns(4)
    m[0].metric("Items checked", report["checked"])
    m[1].metric("Flagged", report["flagged"])
    m[2].metric(f"Too short for {report['n']}-grams", report["too_short"])
    m[3].metric("Training files", len(report["sources"]))
    if not report["sources"]:
        st.info("No training data was searched: no files were picked and nothing was pasted.")
    flagged = [r for r in report["rows"] if r["flagged"]]
    if flagged:
        st.error(f"{len(flagged)} item(s) share an n-gram with the training data: their scores overstate the model.")
        st.dataframe(pd.DataFrame(flagged)[["id", "text", "example", "overlapping", "overlap_fraction", "sources"]],
                     hide_index=True, key=f"{P}_contam_table")
    else:
        st.success(f"No item shares a {report['n']}-word sequence with the searched training data.")


def contamination_experiment_knobs(local: list[str], names: dict[str, str]) -> dict:
    """The C14 experiment's widgets, as ContaminationConfig fields (models with weights here only: it trains)."""
    st.markdown("#### Does contamination inflate a score? Leak the test set and see")
    st.markdown("Score the bundled test items with the base model. Then give two copies of it the same short LoRA "
                "fine-tune: one on as many ordinary instruction examples (the clean control), one on **the test "
                "items themselves**, written as question → answer (a leaked test set). Score the same items after "
                "each, and run the detector above on each fine-tune's training text.")
    c = st.columns(3)
    model_key = c[0].selectbox("Model to fine-tune", local, format_func=names.get, key=f"{P}_c14_model",
                               help="A model with weights on this machine (an endpoint cannot be fine-tuned here).")
    n_items = c[1].slider("Test items", 4, len(bm.load_bundled("test")), ev.ContaminationConfig.n_items,
                          key=f"{P}_c14_items", help="Bundled mini-MMLU items, taken in turn from each subject.")
    epochs = c[2].slider("Epochs of each fine-tune", 1, 16, ev.ContaminationConfig.epochs, key=f"{P}_c14_epochs",
                         help="Both fine-tunes take the same number of steps: the only difference is what they read.")
    return dict(model_key=model_key, n_items=int(n_items), epochs=int(epochs))


def contamination_experiment(run_id: str | None) -> None:
    """The C14 run: live progress, then the three scores against chance, the detector's counts, a few items and the
    claim box; with no run in this session, the latest finished one on this server."""
    if run_id is None:
        done = runs_of(ev.ContaminationConfig, status=(jobs.DONE,))
        if not done:
            claim_box(lessons.not_measured("C14", "no contamination experiment has run yet: press "
                                                  "'Run the contamination experiment'"))
            return
        run_id = done[0].id
        st.caption(f"The latest finished experiment on this server (run {run_id}).")
    else:
        ui.run_panel(run_id, [], prefix=f"{P}_c14", smoothing=0.0)
    run = jobs.get(run_id)
    if run is None or run.active:
        return
    result = load_result(run)
    if result is None:
        claim_box(lessons.not_measured("C14", f"this experiment did not finish ({run.reason or run.status})"))
        return
    from labs.core.charts import bars

    scores = {"base model": result.base, "after the clean fine-tune": result.clean,
              "after fine-tuning on the test items": result.contaminated}
    chance = 1 / len(ev.LETTERS)
    st.plotly_chart(bars(list(scores), list(scores.values()), title=f"Score on the same {result.n_items} test items",
                         y="accuracy", hline=chance, hline_label=f"chance ({chance:.0%})",
                         text=[f"{v:.0%}" for v in scores.values()]), key=f"{P}_c14_chart_{run_id}")
    m = st.columns(3)
    m[0].metric("Score jump over the clean run", f"{result.contaminated - result.clean:+.0%}")
    m[1].metric(f"Flagged by the {result.ngram}-gram detector", f"{result.flagged_contaminated} vs "
                f"{result.flagged_clean}", help="Items sharing an n-gram with the contaminated run's training text "
                                                 "vs with the clean run's.")
    m[2].metric("Steps per fine-tune", result.steps,
                help=" · ".join(f"{k}: {v:.0f} s" for k, v in result.train_seconds.items()))
    claim_box(ev.contamination_verdict(result),
              note="A leaked test set teaches the answer key, not the subject: the contaminated score says nothing "
                   "about new questions.")
    with st.expander("A few items: what each model picked"):
        st.dataframe(pd.DataFrame(result.examples, columns=["item", "base", "clean", "contaminated", "answer"]),
                     hide_index=True, key=f"{P}_c14_examples_{run_id}")


def model_vs_system() -> None:
    """Model evals vs system evals, with pointers to the pages that do the system-level ones."""
    st.markdown(
        "**Model evals** score the model alone on fixed inputs: the benchmark and Q&A tabs here. **System evals** "
        "score the whole application — prompt, retrieval, tools, guardrails — on the task users bring.\n\n"
        "- **Human preference** (system-level, crowd-sourced): the *Arena* page lets people vote between two "
        "anonymous answers and turns the votes into Elo ratings, like LMSYS Chatbot Arena (Chiang et al. 2024).\n"
        "- **RAG triad** (system-level): the *RAG* page scores context relevance, groundedness and answer "
        "relevance — a good model can still fail if retrieval brings the wrong passages.\n"
        "- **Leaderboards saturate**: when every model scores near the top of a benchmark it stops separating "
        "them, and the Open LLM Leaderboard (Hugging Face) moved to harder tasks in 2024 for that reason and for "
        "contamination; see the Contamination tab.\n"
        "- Pick a benchmark that matches the task (HellaSwag for common-sense completion, MMLU for knowledge, "
        "GSM8K for arithmetic word problems, TruthfulQA for resisting popular misconceptions) and add your own "
        "prompt/answer pairs: they are the closest thing to your users.")


def related_labs() -> None:
    """Links to the arena, RAG and preference pages, where installed."""
    links = []
    for pattern in ("60_*.py", "50_*.py", "30_*.py"):  # arena, RAG, DPO (preference data), where installed
        for path in sorted((ASSETS.parent / "pages").glob(pattern)):
            stem = path.stem.split("_", 1)[1]
            links.append(f"[{stem.replace('_', ' ')}](/{stem})")
    if links:
        st.markdown("Related labs: " + " · ".join(links))
