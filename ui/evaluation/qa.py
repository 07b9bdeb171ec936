"""The Your Q&A + LLM judge tab of the evaluation page: the Q&A run's scores, the judge model and the pairs it judges,
the C13 box while no judge run has finished, and the judge's accuracy and biases with every judgment."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from labs.evaluation import generative, judging
from labs.runs import jobs, lessons
from labs.runs.results import generated_rows, load_result
from labs.runs.results import runs as runs_of
from ui.lessons import claim_box


P = "eval"


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


def judge_picker(causal: list[str], names: dict[str, str]) -> tuple[str, str]:
    """The judge model and the pairs it judges: known pairs, or the two latest finished Q&A runs."""
    c = st.columns(2)
    judge_key = c[0].selectbox("Judge model", causal, format_func=names.get, key=f"{P}_judge_model",
                               help="Real evaluations use a much stronger judge (GPT-4-class) than the model judged. "
                                    "A local judge is read by its probabilities of 1 and 2; an endpoint judge by the "
                                    "number it writes (it gives no probabilities).")
    gen_runs = runs_of(generative.GenerativeConfig, status=(jobs.DONE,))
    sources = ["known"] + ([f"runs:{a.id},{b.id}" for a, b in [(gen_runs[0], gen_runs[1])]] if len(gen_runs) >= 2 else [])
    pairs_source = c[1].radio("Pairs", sources, key=f"{P}_judge_pairs",
                              format_func=lambda s: "Known pairs: reference vs a wrong answer" if s == "known" else
                              "Your two latest Q&A runs, answer vs answer",
                              help="Two finished Q&A runs (e.g. two models) unlock the model-vs-model option.")
    return judge_key, pairs_source


def judge_pairs(pairs_source: str, rows: list[dict]) -> list:
    """The pairs to judge: reference vs a wrong answer, or the answers of two Q&A runs side by side."""
    if pairs_source == "known":
        return judging.known_pairs(rows)
    a_id, b_id = pairs_source.removeprefix("runs:").split(",")
    return judging.run_pairs(generated_rows(jobs.get(a_id)), generated_rows(jobs.get(b_id)))


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
    st.warning(judging.judge_verdict_text(rates, judge_name))
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
