"""Evaluate models: multiple-choice benchmarks by log-likelihood, your own Q&A, an LLM judge and its biases, diversity, contamination."""
from __future__ import annotations

import functools
import hashlib
import json

import pandas as pd
import streamlit as st

import ui
from labs import adapters, jobs, lessons, models
from labs.results import generated_rows, load_result, runs as runs_of
from labs import evaluation as ev
from labs.data import ASSETS
from labs.data import benchmarks as bm
from ui.evaluation import training_corpus
from ui.lessons import claim_box

ICON = "📊"
P = "eval"

ui.page_header(
    "Evaluation",
    "How good is a model? Ask it questions whose answers you know. A **benchmark** (MMLU, HellaSwag, ...) is scored "
    "without letting the model write anything: we measure how *likely* it finds each choice and count how often the "
    "right one is the most likely (`score += model_answer == correct_answer`). Your own prompt/answer pairs are "
    "scored by matching the text it writes; open-ended answers need a judge, often another LLM — with biases you "
    "can measure here. Good answers should also vary (diversity) and must not have been seen in training "
    "(contamination).",
    ICON,
)
ui.init_state(P, bench_run=None, gen_run=None, judge_run=None, div_run=None, contam=None)
me = ui.session_id()
CAUSAL = [s.key for s in models.generators()]  # local models and endpoints from the models file
NAMES = {s.key: ui.display_name(s.key) for s in models.generators()}
for _k in (f"{P}_model", f"{P}_gen_model", f"{P}_judge_model", f"{P}_div_model"):
    if st.session_state.get(_k) not in CAUSAL:
        st.session_state.pop(_k, None)  # an entry removed from the models file


def _endpoint_scoring_note(key: str) -> bool:
    """True (after saying why) when `key` is an endpoint: log-likelihood scoring needs a local model."""
    s = models.spec(key)
    if s.is_endpoint:
        st.warning(models.endpoint_refusal(s, "scored by log-likelihood (each choice's probability)"))
    return s.is_endpoint


def _active(run_id: str | None) -> bool:
    run = jobs.get(run_id) if run_id else None
    return bool(run and run.active)


def _adapter_choice(model_key: str, key: str) -> str:
    """A select box of saved adapters for this base model; '' = the base model alone."""
    found = adapters.list_adapters(base_model=model_key)
    options = [""] + [a.path for a in found]
    labels = {"": "(base model, no adapter)", **{a.path: f"{a.label} · {a.page}" for a in found}}
    return st.selectbox("Adapter", options, format_func=labels.get, key=key,
                        help="LoRA adapters saved by the fine-tuning pages (SFT, DPO, LoRA) for this base model. "
                             "The adapter is applied to a private copy; the shared model stays untouched.")


tab_bench, tab_gen, tab_div, tab_contam, tab_sys = st.tabs(
    ["Benchmark (multiple choice)", "Your Q&A + LLM judge", "Diversity", "Contamination", "Model vs system evals"])

# =====================================================================================================================
with tab_bench:
    c = st.columns(3)
    model_key = c[0].selectbox("Model", CAUSAL, format_func=NAMES.get, key=f"{P}_model",
                               help="SmolLM2-135M-Instruct (chat) or Gemma-3-270M (base). Benchmarks use plain prompts "
                                    "for both, as lm-evaluation-harness does by default.")
    with c[1]:
        adapter = _adapter_choice(model_key, f"{P}_adapter")
    bench_endpoint = _endpoint_scoring_note(model_key)
    source = c[2].radio("Questions", ["Bundled mini benchmark", "Upload a file"], key=f"{P}_source",
                        help="The bundled set: 115 easy questions over 6 subjects, written for this app, with a 5-per-"
                             "subject dev split for few-shot prompts. Or upload MMLU CSV / HellaSwag JSONL.")
    upload = dev_upload = None
    if source == "Upload a file":
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

    items, dev, digest, dataset, dev_name = [], [], "", "mini_mmlu", "bundled dev split"
    with ui.friendly_errors("Reading the questions"):
        if source == "Bundled mini benchmark":
            items, dev = bm.load_bundled("test"), bm.load_bundled("dev")
        elif upload is not None:
            data = upload.getvalue()
            loaded = bm.read_upload(data, upload.name)
            items = loaded.items
            digest, dataset = hashlib.sha256(data).hexdigest()[:16], upload.name
            st.caption(f"{len(items):,} questions in {len({i.subject for i in items})} subject(s) from "
                       f"{upload.name}. {loaded.columns}")
    if items and source == "Upload a file":
        with ui.friendly_errors("Reading the dev file"):
            if dev_upload is not None:
                dev_data = dev_upload.getvalue()
                dev_loaded = bm.read_upload(dev_data, dev_upload.name, id_prefix="dev/")
                dev, dev_name = dev_loaded.items, dev_upload.name
                digest += "+" + hashlib.sha256(dev_data).hexdigest()[:16]
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

    busy = _active(st.session_state[f"{P}_bench_run"])
    if st.button("Score the benchmark", type="primary", key=f"{P}_go", disabled=busy or not items or bench_endpoint,
                 help="Runs in the background; the live curve shows the accuracy so far."):
        with ui.friendly_errors("Starting the benchmark"):
            cfg = ev.BenchmarkConfig(model_key=model_key, adapter=adapter, dataset=dataset, data_digest=digest,
                                     choice_format=choice_format, k_shot=k_shot, limit=int(limit), dev=dev_name)
            lm = ui.cached_model(model_key)
            st.session_state[f"{P}_bench_run"] = jobs.submit(
                cfg, functools.partial(ev.run_benchmark, lm=lm, items=items, dev=dev), owner=me,
                label=f"Eval · {NAMES[model_key]}")
            st.rerun()
    if busy:
        st.caption("A benchmark of yours is running: stop it or wait for it to finish before starting another.")
    if not items and source == "Upload a file" and upload is None:
        st.info("Upload a file to score it, or switch back to the bundled mini benchmark.")

    run_id = st.session_state[f"{P}_bench_run"]
    if run_id:
        ui.run_panel(run_id, [("Accuracy so far", ["acc", "acc_norm"])], prefix=f"{P}_bench", smoothing=0.0)
        run = jobs.get(run_id)
        loaded_run = load_result(run, partial=True)
        results = loaded_run.data if loaded_run else None
        if results and results["samples"]:
            summary, overall = results["summary"], results["summary"]["overall"]
            if not results["complete"]:
                st.warning(f"Partial results: {overall['n']} of {results['total']} items were scored before the "
                           "run ended. The numbers below cover those items only.")
            norm_differs = summary.get("acc_norm_differs", True)
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
            dist = ev.answer_distribution(results["samples"])
            a = st.columns([3, 2])
            a[0].plotly_chart(ev.answer_chart(dist), key=f"{P}_answer_chart")
            warning = ev.same_answer_text(dist)
            if warning:
                a[1].warning(warning)
            else:
                a[1].caption(f"The model's most frequent pick is {dist['top']} ({dist['top_share']:.0%} of items; "
                             f"{dist['top_gold_share']:.0%} of the right answers are {dist['top']}). A model with no "
                             "preference for a position would pick each about as often as it is right.")
            if overall["acc"] - 2 * overall["acc_stderr"] <= overall["random"]:
                st.caption("The 95% interval (±2 s.e.) reaches down to random guessing: with this many items you "
                           "cannot tell this model from a coin — more items shrink the error bars as 1/√n.")
                if run.config.get("choice_format") == "letters":
                    st.caption("Small models often know an answer but cannot point at its letter. Score 'the "
                               "answer's words (cloze)' to compare: the OLMES standard (Gu et al. 2024) reports "
                               "both formulations for this reason.")
            metric = st.radio("Bars show", ["acc", "acc_norm"], horizontal=True, key=f"{P}_bar_metric",
                              help="Which accuracy the per-subject chart shows.") if norm_differs else "acc"
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
            with st.expander("Sample viewer: each choice's log-likelihood", expanded=False):
                samples = results["samples"]
                only_wrong = st.checkbox("Only items the model got wrong", key=f"{P}_only_wrong")
                shown = [s for s in samples if not only_wrong or s.acc == 0] or samples
                idx = st.selectbox("Item", range(len(shown)), key=f"{P}_sample",
                                   format_func=lambda i: f"{shown[i].id}: {shown[i].choice_texts[shown[i].answer][:40]}"
                                                         f" {'✓' if shown[i].acc else '✗'}")
                s = shown[min(idx, len(shown) - 1)]
                st.code(s.prompt, language=None)
                st.dataframe(pd.DataFrame(ev.sample_rows(s)), hide_index=True, key=f"{P}_sample_table")
            d = st.columns(2)
            d[0].download_button("Results (lm-eval-harness-style JSON)", json.dumps(results["harness"], indent=2),
                                 file_name=f"{run_id}-results.json", key=f"{P}_dl_harness")
            d[1].download_button("Per-item log-likelihoods (JSONL)",
                                 "\n".join(json.dumps(ev.sample_record(x)) for x in results["samples"]),
                                 file_name=f"{run_id}-samples.jsonl", key=f"{P}_dl_samples")

    with st.expander("Speed: one forward pass per item instead of one per choice", expanded=False):
        st.markdown("The prompt is the same for all choices, so its forward pass (and KV cache) is computed once "
                    "and the choices run as one small batch on top. This button times both ways on 8 questions.")
        if st.button("Measure", key=f"{P}_speed", disabled=not items or bench_endpoint):
            with ui.friendly_errors("Measuring"), st.spinner("Timing both ways…"):
                lm = ui.cached_model(model_key)
                speed = ev.throughput(lm, items[:8], choice_format, k_shot, dev)
                s = st.columns(3)
                s[0].metric("Shared prefix, batched", f"{speed['fast_items_per_s']:.1f} items/s")
                s[1].metric("One pass per choice", f"{speed['naive_items_per_s']:.1f} items/s")
                s[2].metric("Speed-up", f"{speed['speedup']:.1f}×")

# =====================================================================================================================
with tab_gen:
    st.markdown("Score the text a model **writes** against your reference answers: *exact match* (after lower-casing "
                "and dropping punctuation and articles, as SQuAD does), *contains* (the answer appears in the output) "
                "and *regex* (an item's own pattern, e.g. `\\b(8|eight)\\b`).")
    c = st.columns(3)
    gen_model = c[0].selectbox("Model", CAUSAL, format_func=NAMES.get, key=f"{P}_gen_model",
                               help="The model that answers. Instruct models answer questions; base models continue text.")
    with c[1]:
        gen_adapter = _adapter_choice(gen_model, f"{P}_gen_adapter")
    gen_tokens = c[2].slider("Max answer tokens", 4, 64, 24, key=f"{P}_gen_tokens",
                             help="Greedy decoding, stopped after this many tokens. Short answers keep it quick.")
    c = st.columns(2)
    gen_upload = c[0].file_uploader("Your prompt/answer pairs (JSONL: prompt, answer, optional pattern)",
                                    type=["jsonl"], key=f"{P}_gen_upload",
                                    help="Leave empty to use the bundled 24 questions.")
    extract_regex = c[1].text_input("Extract the answer with a regex (optional)", "", key=f"{P}_gen_extract",
                                    help="lm-eval's regex filter: exact match compares the first capture group, e.g. "
                                         "`answer is (\\w+)`. Empty = the output's first line.")
    rows, gen_digest = [], "bundled"
    with ui.friendly_errors("Reading the prompt/answer pairs"):
        if gen_upload is not None:
            rows = bm.load_generative(gen_upload.getvalue(), gen_upload.name)
            gen_digest = hashlib.sha256(gen_upload.getvalue()).hexdigest()[:16]
        else:
            rows = bm.load_bundled_generative()
    gen_busy = _active(st.session_state[f"{P}_gen_run"])
    if st.button("Generate and score", type="primary", key=f"{P}_gen_go", disabled=gen_busy or not rows):
        with ui.friendly_errors("Starting the generative eval"):
            cfg = ev.GenerativeConfig(model_key=gen_model, adapter=gen_adapter, data_digest=gen_digest,
                                      max_new_tokens=gen_tokens, extract_regex=extract_regex)
            lm = ui.cached_target(gen_model)
            st.session_state[f"{P}_gen_run"] = jobs.submit(cfg, functools.partial(ev.run_generative, lm=lm, rows=rows),
                                                           owner=me, label=f"Eval Q&A · {NAMES[gen_model]}")
            st.rerun()
    gen_run = st.session_state[f"{P}_gen_run"]
    if gen_run:
        ui.run_panel(gen_run, [("Score so far", ["exact_match", "contains", "regex"])], prefix=f"{P}_gen",
                     smoothing=0.0)
        run = jobs.get(gen_run)
        generated = load_result(run)
        if generated is not None:
            out = generated.rows
            if out:
                m = st.columns(3)
                for col, name in zip(m, ("exact_match", "contains", "regex")):
                    col.metric(name, f"{sum(r[name] for r in out) / len(out):.0%}")
                st.dataframe(pd.DataFrame(out)[["prompt", "answer", "output", "prediction", "exact_match", "contains",
                                                "regex"]], hide_index=True, key=f"{P}_gen_table")

    st.subheader("LLM as a judge, both orders")
    st.markdown(
        "The judge reads a question and two responses and says which is better — we read its answer as the "
        "log-likelihood of **1** vs **2**. Each pair is judged twice with the order swapped; if the judge changes "
        "its mind with the order, that is **position bias** and the pair counts as a **tie**. *Known pairs* put the "
        "reference answer against a wrong one, with the long confident wording on the right answer half the time "
        "and on the wrong one the other half, so accuracy and **length bias** are measured, not assumed.")
    c = st.columns(2)
    judge_key = c[0].selectbox("Judge model", CAUSAL, format_func=NAMES.get, key=f"{P}_judge_model",
                               help="Real evaluations use a much stronger judge (GPT-4-class) than the model judged. "
                                    "A local judge is read by its probabilities of 1 and 2; an endpoint judge by the "
                                    "number it writes (it gives no probabilities).")
    gen_runs = runs_of(ev.GenerativeConfig, status=(jobs.DONE,))
    sources = ["known"] + ([f"runs:{a.id},{b.id}" for a, b in [(gen_runs[0], gen_runs[1])]] if len(gen_runs) >= 2 else [])
    pairs_source = c[1].radio("Pairs", sources, key=f"{P}_judge_pairs",
                              format_func=lambda s: "Known pairs: reference vs a wrong answer" if s == "known" else
                              "Your two latest Q&A runs, answer vs answer",
                              help="Two finished Q&A runs (e.g. two models) unlock the model-vs-model option.")
    judge_busy = _active(st.session_state[f"{P}_judge_run"])
    if st.button("Judge", type="primary", key=f"{P}_judge_go", disabled=judge_busy or not rows):
        with ui.friendly_errors("Starting the judge"):
            if pairs_source == "known":
                pairs = ev.known_pairs(rows)
            else:
                a_id, b_id = pairs_source.removeprefix("runs:").split(",")
                pairs = ev.run_pairs(generated_rows(jobs.get(a_id)), generated_rows(jobs.get(b_id)))
            cfg = ev.JudgeConfig(judge_key=judge_key, pairs_source=pairs_source,
                                 data_digest=gen_digest if pairs_source == "known" else "runs")
            judge = ui.cached_target(judge_key)
            st.session_state[f"{P}_judge_run"] = jobs.submit(cfg, functools.partial(ev.run_judge, judge=judge, pairs=pairs),
                                                             owner=me, label=f"Eval judge · {NAMES[judge_key]}")
            st.rerun()
    judge_run = st.session_state[f"{P}_judge_run"]
    finished_judge = jobs.get(judge_run) if judge_run else None
    if finished_judge is None or (not finished_judge.active and finished_judge.status != jobs.DONE):
        claim_box(lessons.not_measured("C13", "no finished judge run yet: press Judge on the known pairs" if
                                       finished_judge is None else f"the judge run did not finish "
                                       f"({finished_judge.reason or finished_judge.status})"))
    if judge_run:
        ui.run_panel(judge_run, [("Judge behaviour so far", ["position_bias", "first_slot", "accuracy", "ties"])],
                     prefix=f"{P}_judge", smoothing=0.0)
        run = jobs.get(judge_run)
        judged_result = load_result(run)
        if judged_result is not None:
            judged = judged_result.data
            rates = judged["rates"]
            if rates:
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
                st.warning(ev.judge_verdict_text(rates, NAMES[judge_key]))
                if run.config.get("pairs_source") == "known":
                    claim_box(lessons.judge_position_bias(round(rates["position_bias"] * rates["pairs"]),
                                                          rates["pairs"]),
                              note=f"Measured on {NAMES.get(run.config.get('judge_key'), 'the judge')}; "
                                   f"it picked slot 1 in {rates['first_slot']:.0%} of its judgments.")
                else:
                    claim_box(lessons.not_measured("C13", "this run judged two models' answers, whose better answer "
                                                          "is unknown: judge the known pairs to measure it"))
                st.dataframe(pd.DataFrame(judged["records"])[
                    [k for k in ("question", "a", "b", "gold", "pick_ab", "pick_ba", "verdict")
                     if k in judged["records"][0]]], hide_index=True, key=f"{P}_judge_table")

# =====================================================================================================================
with tab_div:
    st.markdown("Sample the same prompt several times at each temperature. **distinct-n** = unique n-grams / all "
                "n-grams over the samples (Li et al. 2016): 1 means nothing repeats. **Self-similarity** = mean "
                "cosine similarity between the samples' sentence embeddings (all-MiniLM-L6-v2); **self-overlap** = "
                "mean word-bigram Jaccard between samples. Low temperature: the same answer again and again.")
    c = st.columns(4)
    div_model = c[0].selectbox("Model", CAUSAL, format_func=NAMES.get, key=f"{P}_div_model",
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
    div_busy = _active(st.session_state[f"{P}_div_run"])
    if st.button("Sample and measure", type="primary", key=f"{P}_div_go", disabled=div_busy):
        with ui.friendly_errors("Starting the diversity run"):
            cfg = ev.DiversityConfig(model_key=div_model, prompt=div_prompt, temperatures=tuple(sorted(temps)),
                                     samples=n_samples, max_new_tokens=div_tokens)
            lm = ui.cached_target(div_model)
            embed = None
            if use_embed:
                embedder = ui.cached_embedder()
                embed = lambda texts: embedder.encode(texts)  # noqa: E731
            st.session_state[f"{P}_div_run"] = jobs.submit(
                cfg, functools.partial(ev.run_diversity, lm=lm, embed=embed), owner=me,
                label=f"Eval diversity · {NAMES[div_model]}")
            st.rerun()
    div_run = st.session_state[f"{P}_div_run"]
    if div_run:
        ui.run_panel(div_run, [("Diversity after each temperature (x = samples drawn)",
                                 ["distinct_1", "distinct_2", "self_similarity", "self_overlap"])],
                     prefix=f"{P}_div", smoothing=0.0)
        run = jobs.get(div_run)
        div_result = load_result(run)
        if div_result is not None:
            div = div_result.data
            if div["table"]:
                st.plotly_chart(ev.diversity_chart(div["table"]), key=f"{P}_div_chart")
                st.dataframe(pd.DataFrame(div["table"]), hide_index=True, key=f"{P}_div_table")
                with st.expander("The samples"):
                    for t, texts in div["samples"].items():
                        st.markdown(f"**T = {t}**")
                        st.text("\n".join(f"{i + 1}. {x.strip()}" for i, x in enumerate(texts)))

# =====================================================================================================================
with tab_contam:
    st.markdown(
        "A model that saw the test questions during training scores high for the wrong reason. The GPT-3 paper "
        "(Brown et al. 2020, appendix C) flagged a test item if it shared a **13-gram** with the training data; "
        "our questions are short, so the default here is 8 words. The training data is every text file the other "
        "labs ship under `assets/`, plus anything you paste.")
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
    if st.button("Check for overlap", type="primary", key=f"{P}_contam_go"):
        with ui.friendly_errors("The contamination check"):
            if eval_set == "Bundled mini benchmark + Q&A":
                texts = [(i.id, ev.item_text(i)) for i in bm.load_bundled("test")]
                texts += [(f"qa-{k}", f"{r['prompt']} {r['answer']}") for k, r in enumerate(bm.load_bundled_generative())]
            else:
                texts = [(i.id, ev.item_text(i)) for i in items]
            if not texts:
                raise ValueError("The eval set is empty: choose or upload a benchmark first.")
            corpus = training_corpus(sources, picked)
            if pasted.strip():
                corpus["(pasted text)"] = pasted
            st.session_state[f"{P}_contam"] = ev.contamination(texts, corpus, n_gram)
    report = st.session_state[f"{P}_contam"]
    if report:
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
    claim_box(lessons.not_measured("C14", "this tab finds overlap but does not yet fine-tune a model on the "
                                          "evaluation items to show the score it inflates"))

# =====================================================================================================================
with tab_sys:
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
    links = []
    for pattern in ("60_*.py", "50_*.py", "30_*.py"):  # arena, RAG, DPO (preference data), where installed
        for path in sorted((ASSETS.parent / "pages").glob(pattern)):
            stem = path.stem.split("_", 1)[1]
            links.append(f"[{stem.replace('_', ' ')}](/{stem})")
    if links:
        st.markdown("Related labs: " + " · ".join(links))

ui.how_it_works(
    r"""
**Multiple choice by log-likelihood** (lm-evaluation-harness). For a prompt $x$ and choices $y_1..y_K$:

$$\ell_i = \sum_t \log p_\theta(y_{i,t} \mid x, y_{i,<t}),\qquad
\text{acc} = \mathbb 1[\arg\max_i \ell_i = \text{gold}],\qquad
\text{acc\_norm} = \mathbb 1[\arg\max_i \ell_i / |y_i|_\text{chars} = \text{gold}]$$

Standard error of an accuracy over $n$ items: $\text{se} = s/\sqrt n$ with $s$ the sample standard deviation of the
0/1 scores. The prompt is MMLU's: *"The following are multiple choice questions (with answers) about {subject}."*,
k solved dev examples, then the question and `Answer:`. Tokenization: the continuation's tokens are those of
`tok(prompt + choice)` beyond `tok(prompt)`, so the leading space stays attached to the choice, as the model
would have written it. **Judge**: each pair is judged in both orders; disagreement is a tie (Zheng et al. 2023).
""",
    ev.encode_pair, ev.score_choices, ev.predictions, ev.mean_stderr, ev.combine_orders,
    paper="Hendrycks et al. 2021, Measuring Massive Multitask Language Understanding (MMLU) · Zellers et al. 2019, "
          "HellaSwag · Gao et al., EleutherAI lm-evaluation-harness · Zheng et al. 2023, Judging LLM-as-a-Judge with "
          "MT-Bench and Chatbot Arena · Li et al. 2016, A Diversity-Promoting Objective (distinct-n) · "
          "Brown et al. 2020, Language Models are Few-Shot Learners (appendix C, contamination).",
)
