"""AppTest for the data-mixtures page (tiny random models): calculator, next-token view, a live run, bad input."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "10_Data_mixtures.py")
TINY = "tiny (2 x 64, ~20 ms/step)"


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(at) -> str:
    return " ".join([m.value for m in at.markdown] + [m.value for m in at.info] + [m.value for m in at.warning]
                    + [m.value for m in at.caption] + [m.value for m in at.error])


def test_calculator_gpt3_then_llama_and_a_bigger_budget(app):
    rows = app.session_state["mix_calc_rows"]
    assert rows[0]["source"] == "Common Crawl (filtered)"
    assert rows[0]["epochs"] == pytest.approx(0.44, abs=0.01)
    assert any("Common Crawl" in str(df.value) for df in app.dataframe)  # the table is drawn
    assert "101" in _texts(app)  # GPT-3's printed weights sum to 101%: normalised, and said so
    assert "WebText2" in _texts(app)  # computed != published is explained
    # the claim box is computed from the calculator's rows: 2 of GPT-3's 5 rows do not follow from its weights
    assert any("Does the lecture's claim hold here?" in m.value and "(C1)" in m.value for m in app.markdown)
    assert any("Does not hold" in w.value and "3 of 5 sources" in w.value and "WebText2: computed 3.44" in w.value
               for w in app.warning)
    app.selectbox(key="mix_preset").set_value("LLaMA-1 (33B / 65B)").run()
    assert not app.exception
    assert [r["epochs"] for r in app.session_state["mix_calc_rows"]] == pytest.approx([1.10, 1.06, 0.64, 2.45, 2.23, 1.06, 1.03], abs=0.01)
    budget_key = "mix_budget_llama1"
    app.number_input(key=budget_key).set_value(15000.0).run()  # Llama-3-sized budget on LLaMA-1's data
    assert not app.exception
    assert any("repeated" in w.value for w in app.warning)


def test_next_token_view_shows_shifted_labels(app):
    app.text_area(key="mix_sentence").set_value("The cat sat on the mat.")
    app.button(key="mix_next_go").click().run()
    assert not app.exception
    rows = app.session_state["mix_next_rows"]
    assert len(rows) >= 5
    assert all(a["label"] == b["input"] for a, b in zip(rows, rows[1:]))  # labels = inputs shifted by one
    assert any(m.label == "Perplexity" for m in app.metric)
    # the claim box compares the model's own loss (labels = inputs) with the shifted table's mean
    from labs.runs import lessons

    model_loss, unshifted = app.session_state["mix_next_check"]
    expected = lessons.labels_shifted([r["loss"] for r in rows], model_loss, unshifted)
    assert abs(model_loss - sum(r["loss"] for r in rows) / len(rows)) < 1e-3  # the model shifts inside its loss
    boxes = [e.value for e in list(app.success) + list(app.warning) if "in this run" in e.value]
    assert boxes and expected.figure in boxes[0]


def _wait_and_rerun(at):
    from labs.runs import jobs

    run = jobs.wait(at.session_state["mix_run_id"], timeout=300)
    at.run()
    assert not at.exception, at.exception
    return run


def _small(at, **kw):
    at.number_input(key="mix_steps").set_value(kw.get("steps", 10))
    at.selectbox(key="mix_size").set_value(TINY)
    at.number_input(key="mix_eval_every").set_value(5)
    at.number_input(key="mix_sample_every").set_value(10)


def test_train_a_tiny_gpt_on_a_mixture(app):
    assert any("Not measured yet" in i.value and "Repeat a small domain" in i.value for i in app.info)  # C3, no run
    _small(app)
    app.slider(key="mix_w_arithmetic").set_value(0)
    app.toggle(key="mix_filter").set_value(True).run()
    assert not app.exception
    assert any("duplicates" in df.value.columns for df in app.dataframe)  # what the filter removes
    app.button(key="mix_train").click().run()
    assert not app.exception
    run = _wait_and_rerun(app)
    assert run.status == "done", run.reason
    assert {"val_code", "val_prose", "val_arithmetic"} <= set(run.metrics[-1])
    assert run.metrics[-1]["epochs_arithmetic"] == 0  # weight 0: never sampled, still evaluated
    assert any("step 10 · prose" in n for n in run.notes)  # samples every N steps
    assert "Final per-domain loss" in _texts(app)
    assert any("Not measured yet" in i.value and "repeats no domain" in i.value for i in app.info)  # C3 needs one
    # The compare tab now lists the run.
    assert app.multiselect(key="mix_compare").value


def test_silly_learning_rate_stops_with_a_reason_and_all_zero_weights_warn(app):
    _small(app, steps=40)
    app.select_slider(key="mix_lr").set_value(100.0)
    app.button(key="mix_train").click().run()
    run = _wait_and_rerun(app)
    assert run.status == "failed" and "diverged" in run.reason
    assert any("diverged" in e.value for e in app.error)  # the page says why
    for d in ("code", "prose", "arithmetic"):
        app.slider(key=f"mix_w_{d}").set_value(0)
    app.run()
    assert not app.exception
    assert any("All weights are zero" in w.value for w in app.warning)
    assert app.button(key="mix_train").disabled


def test_a_second_click_while_running_warns_and_keeps_the_run(app):
    from labs.runs import jobs

    _small(app, steps=5000)
    app.number_input(key="mix_seed").set_value(7)
    app.button(key="mix_train").click().run()
    first = app.session_state["mix_run_id"]
    app.number_input(key="mix_seed").set_value(8)  # a different config: must not start a second run
    app.button(key="mix_train").click().run()
    assert not app.exception
    assert app.session_state["mix_run_id"] == first
    assert any("still going" in w.value for w in app.warning)
    jobs.stop(first)
    assert jobs.wait(first, timeout=120).status == "stopped"


def test_repeated_domain_run_gets_an_overfitting_verdict_from_its_own_curves(app):
    from labs.runs import lessons
    from labs.mixtures import pretrain

    _small(app, steps=30)
    app.selectbox(key="mix_repeat_domain").set_value("prose").run()
    app.slider(key="mix_repeat_kb").set_value(1)
    app.button(key="mix_train").click().run()
    run = _wait_and_rerun(app)
    assert run.status == "done", run.reason
    verdict = pretrain.overfitting_verdict(run.metrics, "prose")
    assert verdict.verdict in (lessons.HOLDS, lessons.FAILS)  # 30 steps: either way, computed from this run
    assert any("(C3)" in m.value for m in app.markdown)
    assert any(verdict.figure in e.value for e in list(app.success) + list(app.warning))
    assert pretrain.overfitting_verdict(run.metrics, "").verdict == lessons.NOT_MEASURED


def test_quality_comparison_at_equal_steps_gets_a_claim_box(app):
    from labs.runs import jobs
    from labs.runs import lessons
    from labs.mixtures import comparison

    assert any("(M4)" in m.value for m in app.markdown)  # before a run: not measured yet, with the reason
    assert any("Compare with and without the filter" in i.value for i in app.info)
    assert any("near-duplicate" in df.value.columns for df in app.dataframe)  # the web domain's kinds vs reasons
    assert any(m.label == "Filter recall" for m in app.metric)
    app.number_input(key="mix_q_steps").set_value(10)
    app.selectbox(key="mix_q_size").set_value(TINY)
    app.button(key="mix_q_go").click().run()
    assert not app.exception, app.exception
    run = jobs.wait(app.session_state["mix_q_run_id"], timeout=300)
    app.run()
    assert not app.exception, app.exception
    assert run.status == "done", run.reason
    assert {"val_filtered", "val_unfiltered"} <= set(run.metrics[-1])
    verdict = comparison.quality_verdict(comparison.quality_result(run))
    assert verdict.verdict in (lessons.HOLDS, lessons.FAILS)  # 10 steps: either way, computed from this run
    assert any(verdict.figure in e.value for e in list(app.success) + list(app.warning))
    assert any(m.label == "Clean-text loss, filtered" for m in app.metric)


def test_a_stopped_comparison_is_not_measured(app):
    from labs.runs import jobs

    app.number_input(key="mix_q_steps").set_value(5000)
    app.selectbox(key="mix_q_size").set_value(TINY)
    app.number_input(key="mix_q_seed").set_value(3)
    app.button(key="mix_q_go").click().run()
    jobs.stop(app.session_state["mix_q_run_id"])
    assert jobs.wait(app.session_state["mix_q_run_id"], timeout=120).status == "stopped"
    app.run()
    assert not app.exception, app.exception
    assert any("Not measured yet" in i.value and "did not finish" in i.value for i in app.info)
