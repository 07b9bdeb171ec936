"""The Contamination tab of the evaluation page: the n-gram overlap check (its knobs, the eval items, the training
corpus as text, the report) and the C14 experiment that fine-tunes on the leaked test items."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

import ui
from labs.core.charts import bars
from labs.core.errors import ConfigError
from labs.data import ASSETS
from labs.data import benchmarks as bm
from labs.evaluation import contamination
from labs.runs import jobs, lessons
from labs.runs.results import load_result
from labs.runs.results import runs as runs_of
from ui.lessons import claim_box


P = "eval"


def training_corpus(sources: dict[str, Path], picked: list[str]) -> dict[str, str]:
    """The chosen training-data files as text (name -> text); bytes that are not UTF-8 are replaced, not fatal."""
    return {name: Path(sources[name]).read_text(encoding="utf-8", errors="replace") for name in picked}


def contamination_texts(eval_set: str, items) -> list[tuple[str, str]]:
    """(id, text) of every item to look for: the bundled benchmark and Q&A, or the benchmark chosen above."""
    if eval_set == "Bundled mini benchmark + Q&A":
        texts = [(i.id, contamination.item_text(i)) for i in bm.load_bundled("test")]
        texts += [(f"qa-{k}", f"{r['prompt']} {r['answer']}") for k, r in enumerate(bm.load_bundled_generative())]
    else:
        texts = [(i.id, contamination.item_text(i)) for i in items]
    if not texts:
        raise ConfigError("The eval set is empty: choose or upload a benchmark first.")
    return texts


def contamination_knobs():
    """(n-gram length, eval set, training files by name, the picked ones, pasted text)."""
    c = st.columns(2)
    n_gram = c[0].slider("n-gram length (words)", 3, 13, 8, key=f"{P}_contam_n",
                         help="Shorter n finds more overlap, including harmless phrases ('what is the capital of').")
    eval_set = c[1].radio("Eval set", ["Bundled mini benchmark + Q&A", "The benchmark chosen above"],
                          key=f"{P}_contam_set", help="Which questions to look for in the training data.")
    sources = contamination.training_sources(ASSETS)
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
    n_items = c[1].slider("Test items", 4, len(bm.load_bundled("test")), contamination.ContaminationConfig.n_items,
                          key=f"{P}_c14_items", help="Bundled mini-MMLU items, taken in turn from each subject.")
    epochs = c[2].slider("Epochs of each fine-tune", 1, 16, contamination.ContaminationConfig.epochs,
                         key=f"{P}_c14_epochs",
                         help="Both fine-tunes take the same number of steps: the only difference is what they read.")
    return dict(model_key=model_key, n_items=int(n_items), epochs=int(epochs))


def contamination_experiment(run_id: str | None) -> None:
    """The C14 run: live progress, then the three scores against chance, the detector's counts, a few items and the
    claim box; with no run in this session, the latest finished one on this server."""
    if run_id is None:
        done = runs_of(contamination.ContaminationConfig, status=(jobs.DONE,))
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
    scores = {"base model": result.base, "after the clean fine-tune": result.clean,
              "after fine-tuning on the test items": result.contaminated}
    chance = 1 / len(bm.LETTERS)
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
    claim_box(contamination.contamination_verdict(result),
              note="A leaked test set teaches the answer key, not the subject: the contaminated score says nothing "
                   "about new questions.")
    with st.expander("A few items: what each model picked"):
        st.dataframe(pd.DataFrame(result.examples, columns=["item", "base", "clean", "contaminated", "answer"]),
                     hide_index=True, key=f"{P}_c14_examples_{run_id}")
