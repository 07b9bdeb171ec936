"""Evaluate models: multiple-choice benchmarks by log-likelihood, your own Q&A, an LLM judge and its biases, diversity, contamination."""
from __future__ import annotations

import functools

import streamlit as st

import ui
from labs import models
from labs.data import benchmarks as bm
from labs.evaluation import benchmark, contamination, diversity, generative, judging, scoring
from labs.runs import jobs
from ui.evaluation import benchmark as benchmark_ui
from ui.evaluation import contamination as contamination_ui
from ui.evaluation import diversity as diversity_ui
from ui.evaluation import qa as qa_ui
from ui.evaluation import shared as shared_ui
from ui.evaluation import system as system_ui


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
ui.init_state(P, bench_run=None, gen_run=None, judge_run=None, div_run=None, contam=None, c14_run=None)
me = ui.session_id()
CAUSAL = [s.key for s in models.generators()]  # local models and endpoints from the models file
NAMES = {s.key: ui.display_name(s.key) for s in models.generators()}
LOCAL = [s.key for s in models.causal_models()]  # weights on this machine: these can be fine-tuned
shared_ui.forget_removed_models(CAUSAL)


def bench_tab() -> list:
    """Model, questions, scoring -> BenchmarkConfig -> a background run -> accuracy, subjects, samples. Returns the
    scored items (the contamination tab can search for them)."""
    c = st.columns(3)
    model_key = c[0].selectbox("Model", CAUSAL, format_func=NAMES.get, key=f"{P}_model",
                               help="SmolLM2-135M-Instruct (chat) or Gemma-3-270M (base). Benchmarks use plain prompts "
                                    "for both, as lm-evaluation-harness does by default.")
    with c[1]:
        adapter = shared_ui.adapter_choice(model_key, f"{P}_adapter")
    bench_endpoint = benchmark_ui.endpoint_scoring_note(model_key)
    source = c[2].radio("Questions", ["Bundled mini benchmark", "Upload a file"], key=f"{P}_source",
                        help="The bundled set: 115 easy questions over 6 subjects, written for this app, with a 5-per-"
                             "subject dev split for few-shot prompts. Or upload MMLU CSV / HellaSwag JSONL.")
    upload, dev_upload = benchmark_ui.upload_widgets() if source == "Upload a file" else (None, None)
    choice_format, k_shot, limit = benchmark_ui.scoring_knobs()
    items, dev, digest, dataset, dev_name = benchmark_ui.read_questions(source, upload, dev_upload, k_shot)

    busy = shared_ui.active(st.session_state[f"{P}_bench_run"])
    if st.button("Score the benchmark", type="primary", key=f"{P}_go", disabled=busy or not items or bench_endpoint,
                 help="Runs in the background; the live curve shows the accuracy so far."):
        with ui.friendly_errors("Starting the benchmark"):
            cfg = benchmark.BenchmarkConfig(model_key=model_key, adapter=adapter, dataset=dataset, data_digest=digest,
                                            choice_format=choice_format, k_shot=k_shot, limit=limit, dev=dev_name)
            lm = ui.cached_model(model_key)
            st.session_state[f"{P}_bench_run"] = jobs.submit(
                cfg, functools.partial(benchmark.run_benchmark, lm=lm, items=items, dev=dev), owner=me,
                label=f"Eval · {NAMES[model_key]}")
            st.rerun()
    if busy:
        st.caption("A benchmark of yours is running: stop it or wait for it to finish before starting another.")
    if not items and source == "Upload a file" and upload is None:
        st.info("Upload a file to score it, or switch back to the bundled mini benchmark.")

    run_id = st.session_state[f"{P}_bench_run"]
    if run_id:
        ui.run_panel(run_id, [("Accuracy so far", ["acc", "acc_norm"])], prefix=f"{P}_bench", smoothing=0.0)
        benchmark_ui.benchmark_results(jobs.get(run_id))
    benchmark_ui.speed_check(items, bench_endpoint, model_key, choice_format, k_shot, dev)
    return items


def qa_tab() -> None:
    """Your prompt/answer pairs -> GenerativeConfig -> a background run -> exact match, contains, regex; then the
    LLM judge on the same pairs."""
    st.markdown("Score the text a model **writes** against your reference answers: *exact match* (after lower-casing "
                "and dropping punctuation and articles, as SQuAD does), *contains* (the answer appears in the output) "
                "and *regex* (an item's own pattern, e.g. `\\b(8|eight)\\b`).")
    c = st.columns(3)
    gen_model = c[0].selectbox("Model", CAUSAL, format_func=NAMES.get, key=f"{P}_gen_model",
                               help="The model that answers. Instruct models answer questions; base models continue text.")
    with c[1]:
        gen_adapter = shared_ui.adapter_choice(gen_model, f"{P}_gen_adapter")
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
            gen_digest = shared_ui.digest(gen_upload.getvalue())
        else:
            rows = bm.load_bundled_generative()
    gen_busy = shared_ui.active(st.session_state[f"{P}_gen_run"])
    if st.button("Generate and score", type="primary", key=f"{P}_gen_go", disabled=gen_busy or not rows):
        with ui.friendly_errors("Starting the generative eval"):
            cfg = generative.GenerativeConfig(model_key=gen_model, adapter=gen_adapter, data_digest=gen_digest,
                                              max_new_tokens=gen_tokens, extract_regex=extract_regex)
            lm = ui.cached_target(gen_model)
            st.session_state[f"{P}_gen_run"] = jobs.submit(cfg, functools.partial(generative.run_generative, lm=lm, rows=rows),
                                                           owner=me, label=f"Eval Q&A · {NAMES[gen_model]}")
            st.rerun()
    gen_run = st.session_state[f"{P}_gen_run"]
    if gen_run:
        ui.run_panel(gen_run, [("Score so far", ["exact_match", "contains", "regex"])], prefix=f"{P}_gen",
                     smoothing=0.0)
        qa_ui.qa_results(jobs.get(gen_run))
    judge_section(rows, gen_digest)


def judge_section(rows: list[dict], gen_digest: str) -> None:
    """Known pairs (or two Q&A runs) -> JudgeConfig -> each pair judged in both orders -> the judge's biases, C13."""
    st.subheader("LLM as a judge, both orders")
    st.markdown(
        "The judge reads a question and two responses and says which is better — we read its answer as the "
        "log-likelihood of **1** vs **2**. Each pair is judged twice with the order swapped; if the judge changes "
        "its mind with the order, that is **position bias** and the pair counts as a **tie**. *Known pairs* put the "
        "reference answer against a wrong one, with the long confident wording on the right answer half the time "
        "and on the wrong one the other half, so accuracy and **length bias** are measured, not assumed.")
    judge_key, pairs_source = qa_ui.judge_picker(CAUSAL, NAMES)
    judge_busy = shared_ui.active(st.session_state[f"{P}_judge_run"])
    if st.button("Judge", type="primary", key=f"{P}_judge_go", disabled=judge_busy or not rows):
        with ui.friendly_errors("Starting the judge"):
            pairs = qa_ui.judge_pairs(pairs_source, rows)
            cfg = judging.JudgeConfig(judge_key=judge_key, pairs_source=pairs_source,
                                      data_digest=gen_digest if pairs_source == "known" else "runs")
            judge = ui.cached_target(judge_key)
            st.session_state[f"{P}_judge_run"] = jobs.submit(cfg, functools.partial(judging.run_judge, judge=judge, pairs=pairs),
                                                             owner=me, label=f"Eval judge · {NAMES[judge_key]}")
            st.rerun()
    judge_run = st.session_state[f"{P}_judge_run"]
    qa_ui.judge_not_measured(jobs.get(judge_run) if judge_run else None)
    if judge_run:
        ui.run_panel(judge_run, [("Judge behaviour so far", ["position_bias", "first_slot", "accuracy", "ties"])],
                     prefix=f"{P}_judge", smoothing=0.0)
        qa_ui.judge_results(jobs.get(judge_run), NAMES[judge_key], NAMES)


def diversity_tab() -> None:
    """Prompt, temperatures -> DiversityConfig -> a background run -> distinct-n, self-similarity, the samples."""
    st.markdown("Sample the same prompt several times at each temperature. **distinct-n** = unique n-grams / all "
                "n-grams over the samples (Li et al. 2016): 1 means nothing repeats. **Self-similarity** = mean "
                "cosine similarity between the samples' sentence embeddings (all-MiniLM-L6-v2); **self-overlap** = "
                "mean word-bigram Jaccard between samples. Low temperature: the same answer again and again.")
    knobs, use_embed = diversity_ui.diversity_knobs(CAUSAL, NAMES)
    div_busy = shared_ui.active(st.session_state[f"{P}_div_run"])
    if st.button("Sample and measure", type="primary", key=f"{P}_div_go", disabled=div_busy):
        with ui.friendly_errors("Starting the diversity run"):
            cfg = diversity.DiversityConfig(**knobs)
            lm = ui.cached_target(cfg.model_key)
            embed = None
            if use_embed:
                embedder = ui.cached_embedder()
                embed = lambda texts: embedder.encode(texts)  # noqa: E731
            st.session_state[f"{P}_div_run"] = jobs.submit(
                cfg, functools.partial(diversity.run_diversity, lm=lm, embed=embed), owner=me,
                label=f"Eval diversity · {NAMES[cfg.model_key]}")
            st.rerun()
    div_run = st.session_state[f"{P}_div_run"]
    if div_run:
        ui.run_panel(div_run, [("Diversity after each temperature (x = samples drawn)",
                                 ["distinct_1", "distinct_2", "self_similarity", "self_overlap"])],
                     prefix=f"{P}_div", smoothing=0.0)
        diversity_ui.diversity_results(jobs.get(div_run))


def contamination_tab(items: list) -> None:
    """Eval items + training texts -> n-gram overlap (GPT-3, appendix C) -> the flagged items."""
    st.markdown(
        "A model that saw the test questions during training scores high for the wrong reason. The GPT-3 paper "
        "(Brown et al. 2020, appendix C) flagged a test item if it shared a **13-gram** with the training data; "
        "our questions are short, so the default here is 8 words. The training data is every text file the other "
        "labs ship under `assets/`, plus anything you paste.")
    n_gram, eval_set, sources, picked, pasted = contamination_ui.contamination_knobs()
    if st.button("Check for overlap", type="primary", key=f"{P}_contam_go"):
        with ui.friendly_errors("The contamination check"):
            texts = contamination_ui.contamination_texts(eval_set, items)
            corpus = contamination_ui.training_corpus(sources, picked)
            if pasted.strip():
                corpus["(pasted text)"] = pasted
            st.session_state[f"{P}_contam"] = contamination.contamination(texts, corpus, n_gram)
    if st.session_state[f"{P}_contam"]:
        contamination_ui.contamination_report(st.session_state[f"{P}_contam"])
    knobs = contamination_ui.contamination_experiment_knobs(LOCAL, NAMES)
    busy = shared_ui.active(st.session_state[f"{P}_c14_run"])
    if st.button("Run the contamination experiment", key=f"{P}_c14_go", disabled=busy,
                 help="Two short fine-tunes of the model (on the test items, and on as many clean "
                      "examples), then all three score the items."):
        with ui.friendly_errors("Starting the contamination experiment"):
            cfg = contamination.ContaminationConfig(**knobs)
            lm = ui.cached_model(cfg.model_key)
            st.session_state[f"{P}_c14_run"] = jobs.submit(
                cfg, functools.partial(contamination.run_contamination, lm=lm), owner=me,
                label=f"Eval contamination · {NAMES[cfg.model_key]}")
            st.rerun()
    contamination_ui.contamination_experiment(st.session_state[f"{P}_c14_run"])


tab_bench, tab_gen, tab_div, tab_contam, tab_sys = st.tabs(
    ["Benchmark (multiple choice)", "Your Q&A + LLM judge", "Diversity", "Contamination", "Model vs system evals"])
with tab_bench:
    bench_items = bench_tab()
with tab_gen:
    qa_tab()
with tab_div:
    diversity_tab()
with tab_contam:
    contamination_tab(bench_items)
with tab_sys:
    system_ui.tab()

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
    scoring.encode_pair, scoring.score_choices, scoring.predictions, scoring.mean_stderr, judging.combine_orders,
    paper="Hendrycks et al. 2021, Measuring Massive Multitask Language Understanding (MMLU) · Zellers et al. 2019, "
          "HellaSwag · Gao et al., EleutherAI lm-evaluation-harness · Zheng et al. 2023, Judging LLM-as-a-Judge with "
          "MT-Bench and Chatbot Arena · Li et al. 2016, A Diversity-Promoting Objective (distinct-n) · "
          "Brown et al. 2020, Language Models are Few-Shot Learners (appendix C, contamination).",
)
