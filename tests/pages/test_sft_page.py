"""AppTest for the fine-tuning page (tiny random models): loads, shows the mask view, trains, compares, classifies."""
import json

import pytest
from streamlit.testing.v1 import AppTest

from pathlib import Path

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "20_Fine_tuning.py")


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _wait_and_rerun(at, key):
    from labs.runs import jobs

    run = jobs.wait(at.session_state[key], timeout=300)
    at.run()
    assert not at.exception, at.exception
    return run


def test_page_loads_with_mask_view_and_estimate(app):
    text = " ".join(m.value for m in app.markdown)
    assert "trained (green)" in text and "masked" in text
    labels = [m.label for m in app.metric]
    assert "Trainable parameters" in labels and "Time per step (estimate)" in labels
    app.toggle(key="sft_train_on_prompt").set_value(True).run()
    assert not app.exception
    assert " 0 masked" in " ".join(m.value for m in app.markdown)


def test_train_then_before_after_and_second_click(app):
    app.select_slider(key="sft_n_examples").set_value(16)
    app.slider(key="sft_epochs").set_value(1)
    app.slider(key="sft_score_n").set_value(2)
    app.button(key="sft_train").click().run()
    assert not app.exception
    first = app.session_state["sft_run_id"]
    app.button(key="sft_train").click().run()  # a second click while the run goes: no second run
    assert not app.exception and app.session_state["sft_run_id"] == first
    from labs.runs import jobs

    assert len([r for r in jobs.list_runs("SFTConfig") if r.id == first]) == 1
    assert sum(r.active for r in jobs.list_runs("SFTConfig")) <= 1
    run = _wait_and_rerun(app, "sft_run_id")
    assert run.status == "done", run.reason
    assert any("train_loss" in m for m in run.metrics) and any("val_loss" in m for m in run.metrics)
    assert {"format_before", "format_after"} <= set(run.summary)
    assert any("(C4)" in m.value for m in app.markdown)  # the claim box, computed from this run's format scores
    assert any("with 16 examples" in x.value for x in (*app.success, *app.warning))
    assert any(m.label == "Follows the TL;DR format" for m in app.metric)
    app.button(key="sft_compare_btn").click().run()
    assert not app.exception
    assert any("adapter off" in m.value for m in app.markdown)
    # the adapter was registered for the arena / evaluation pages
    from labs.models import adapters

    assert any(a.page == "sft" for a in adapters.list_adapters())


def test_size_sweep_draws_format_and_loss_against_size(app):
    from labs.runs import jobs

    assert any("Not measured yet" in i.value and "press Train" in i.value for i in app.info)
    app.slider(key="sft_epochs").set_value(1)
    app.slider(key="sft_score_n").set_value(2)
    app.multiselect(key="sft_sizes").set_value([8])
    app.button(key="sft_size_go").click().run()
    assert any("at least two sizes" in e.value for e in app.error)
    app.multiselect(key="sft_sizes").set_value([8, 16])
    app.button(key="sft_size_go").click().run()
    assert not app.exception and not app.error
    ids = app.session_state["sft_size_ids"]
    assert len(ids) == 2 and all(jobs.wait(i, timeout=300).status == jobs.DONE for i in ids)
    app.run()
    assert not app.exception, app.exception
    assert app.get("plotly_chart")
    assert any("(C4)" in m.value for m in app.markdown)
    assert any("sweep: 8:" in x.value for x in (*app.success, *app.warning))


def test_bad_upload_shows_an_error(app):
    app.radio(key="sft_source").set_value("Upload a file").run()
    assert not app.exception
    assert any("Upload a file" in i.value for i in app.info)


def test_classifier_tab_runs_a_sweep(app):
    app.multiselect(key="sft_clf_blocks").set_value([0, 1])
    app.slider(key="sft_clf_epochs").set_value(2)
    app.button(key="sft_clf_train").click().run()
    run = _wait_and_rerun(app, "sft_clf_run_id")
    assert run.status == "done", run.reason
    assert {r["blocks"] for r in run.summary["results"]} == {0, 1}
    assert not app.exception
    # C5's box is computed from this run's seconds per epoch
    from labs.runs import lessons

    verdict = lessons.cost_grows_with_blocks({r["blocks"]: r["seconds_per_epoch"] for r in run.summary["results"]})
    assert any("(C5)" in m.value for m in app.markdown)
    assert any(verdict.figure in x.value for x in (*app.success, *app.warning))


def test_base_model_without_chat_template_hides_it(app):
    app.selectbox(key="sft_model").set_value("gemma3-270m").run()
    assert not app.exception, app.exception
    options = app.selectbox(key="sft_template").options
    assert len(options) == 2 and not any("chat template" in o for o in options)


def test_top_blocks_control_sets_the_adapted_blocks_and_the_cost(app):
    """'Top blocks adapted': 0 = every block; 1 adapts half of the tiny model's two blocks, so half the trainable
    parameters; the setting reaches the run's config."""
    def trainable():
        return int(next(m.value for m in app.metric if m.label == "Trainable parameters").replace(",", ""))

    assert app.number_input(key="sft_lora_layers").value == 0  # the default 8 is more than the tiny model's 2 blocks
    every = trainable()
    app.number_input(key="sft_lora_layers").set_value(1).run()
    assert not app.exception and trainable() * 2 == every
    app.select_slider(key="sft_n_examples").set_value(16)
    app.slider(key="sft_epochs").set_value(1)
    app.slider(key="sft_score_n").set_value(0)
    app.button(key="sft_train").click().run()
    run = _wait_and_rerun(app, "sft_run_id")
    assert run.status == "done", run.reason
    assert run.config["lora_layers"] == 1 and run.summary["trainable"] * 2 == every
