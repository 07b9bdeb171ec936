"""AppTest for the evaluation page (tiny random models): it loads, scores a benchmark in the background, shows
per-subject results and the sample viewer, judges known pairs, and flags a planted contamination."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

from labs.evaluation import benchmark, contamination, scoring
from labs.runs import jobs
from labs.runs import results

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "80_Evaluation.py")


def _app(monkeypatch) -> AppTest:
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_benchmark_runs_and_shows_results(monkeypatch):
    at = _app(monkeypatch)
    at.number_input(key="eval_limit").set_value(8)
    at.radio(key="eval_format").set_value("text")
    at.button(key="eval_go").click().run()
    run_id = at.session_state["eval_bench_run"]
    assert run_id
    run = jobs.wait(run_id, timeout=300)
    assert run.status == jobs.DONE, run.reason
    at.run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert {"acc", "acc_norm", "Random guessing", "Items"} <= set(labels)
    assert [m.value for m in at.metric if m.label == "Items"] == ["8"]
    viewer = [d.value for d in at.dataframe if "loglik / char" in d.value.columns]
    assert viewer and len(viewer[0]) == 4 and (viewer[0]["gold"] == "✓").sum() == 1  # one row per choice
    # a second identical click replays the stored run instead of scoring again
    at.button(key="eval_go").click().run()
    assert at.session_state["eval_bench_run"] == run_id and jobs.get(run_id).replayed


def test_judge_and_contamination(monkeypatch):
    at = _app(monkeypatch)
    at.button(key="eval_judge_go").click().run()
    run = jobs.wait(at.session_state["eval_judge_run"], timeout=300)
    assert run.status == jobs.DONE, run.reason
    at.run()
    assert not at.exception, at.exception
    assert any("as a judge" in w.value and "cannot read two answers" in w.value for w in at.warning)
    assert any(m.label == "Position bias" for m in at.metric)
    # the claim box is computed from this judge run's rates (C13), never typed
    import json

    from labs.runs import lessons

    rates = json.loads((run.artifacts / "judgments.json").read_text())["rates"]
    verdict = lessons.judge_position_bias(round(rates["position_bias"] * rates["pairs"]), rates["pairs"])
    assert any(verdict.figure in e.value for e in list(at.success) + list(at.warning))
    # C14 before any experiment: said honestly
    if not results.runs(contamination.ContaminationConfig, status=(jobs.DONE,)):
        assert any("Not measured yet" in i.value and "no contamination experiment" in i.value for i in at.info)

    at.text_area(key="eval_contam_paste").set_value(
        "Some notes. Which river flows through London? The Thames, of course, and more text follows here.")
    at.slider(key="eval_contam_n").set_value(5)
    at.button(key="eval_contam_go").click().run()
    assert not at.exception, at.exception
    assert any("share an n-gram" in e.value for e in at.error)


def test_letters_hide_acc_norm_and_show_which_answer_the_model_picks(monkeypatch):
    at = _app(monkeypatch)
    at.number_input(key="eval_limit").set_value(6)
    at.slider(key="eval_k").set_value(2).run()
    assert any("2-shot examples come from bundled dev split" in c.value and "never from the scored" in c.value
               for c in at.caption)
    at.button(key="eval_go").click().run()
    run = jobs.wait(at.session_state["eval_bench_run"], timeout=300)
    assert run.status == jobs.DONE, run.reason
    at.run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert "acc" in labels and "acc_norm" not in labels  # single letters: acc_norm would equal acc
    assert any("No acc_norm here" in c.value for c in at.caption)
    picks = scoring.answer_distribution(benchmark.load_results(run.artifacts)["samples"])
    if picks["same_answer"]:
        assert any(f"answered {picks['top']}" in w.value for w in at.warning)
    else:
        assert any(f"most frequent pick is {picks['top']}" in c.value for c in at.caption)


def test_contamination_experiment_from_the_page(monkeypatch):
    """C14 on the page: the button runs base / clean / contaminated fine-tunes as a job, and the claim box and the
    score jump are computed from that run's result."""
    from labs.runs import lessons

    at = _app(monkeypatch)
    at.slider(key="eval_c14_items").set_value(4)
    at.slider(key="eval_c14_epochs").set_value(1)
    at.button(key="eval_c14_go").click().run()
    assert not at.exception, at.exception
    run = jobs.wait(at.session_state["eval_c14_run"], timeout=300)
    assert run.status == jobs.DONE, run.reason
    at.run()
    assert not at.exception, at.exception
    result = results.load_result(run)
    assert isinstance(result, contamination.ContaminationResult) and result.n_items == 4
    verdict = contamination.contamination_verdict(result)
    shown = [e.value for e in list(at.success) + list(at.warning)]
    assert verdict.verdict in (lessons.HOLDS, lessons.FAILS)
    assert any(verdict.figure in v for v in shown), shown
    jump = [m.value for m in at.metric if m.label == "Score jump over the clean run"]
    assert jump == [f"{result.contaminated - result.clean:+.0%}"]
    assert any(m.label.startswith("Flagged by the 10-gram") and m.value == f"{result.flagged_contaminated} vs "
               f"{result.flagged_clean}" for m in at.metric)
    # a fresh session with no run of its own shows the latest finished experiment on the server
    fresh = _app(monkeypatch)
    assert any(f"run {run.id}" in c.value for c in fresh.caption)
    assert any(verdict.figure in e.value for e in list(fresh.success) + list(fresh.warning))
