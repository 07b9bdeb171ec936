"""Linear vs full attention page: loads; mechanism check; memory calculator numbers; a short cost run and a short
training run through the job queue; bad input gives a readable error."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labs.runs import jobs

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "70_Linear_vs_full_attention.py")


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at, prefix):
    return next(m.value for m in at.metric if m.label.startswith(prefix))


def test_loads_with_memory_figures_and_published_source(app):
    at = app
    assert at.title[0].value.endswith("Linear vs full attention")
    assert _metric(at, "Long-context limit for 3:1") == "75% less"
    assert _metric(at, "Kimi Linear vs all-MLA at 1,000,000").startswith("74.")
    assert any("Kimi Linear" in i.value and "1.84 ms" in i.value for i in at.info)  # published, labelled
    # C12's box is computed from the layer shapes at the chosen context
    from labs.attention import memory

    assert any(memory.hybrid_verdict(1_000_000).figure in s.value for s in at.success)
    at.number_input(key="attn_mem_ratio").set_value(1).run()
    assert _metric(at, "Long-context limit for 1:1") == "50% less"


def test_mechanism_check_reports_tiny_difference(app):
    at = app
    at.selectbox(key="attn_mech_variant").set_value("kda")
    at.button(key="attn_mech_check").click().run()
    assert not at.exception
    name, diff = at.session_state["attn_mech_diff"]
    assert name == "kda" and diff < 1e-4
    assert any("max |recurrent − chunked|" in s.value for s in at.success)


def test_cost_run_and_train_run(app):
    at = app
    assert any("Not measured yet" in i.value and "press Measure" in i.value for i in at.info)  # C10 before a run
    at.multiselect(key="attn_cost_variants").set_value(["softmax", "gated_deltanet"])
    at.selectbox(key="attn_cost_max").set_value(512)
    at.selectbox(key="attn_cost_dims").set_value("1 × 128")
    at.slider(key="attn_cost_budget").set_value(5)
    at.button(key="attn_cost_go").click().run()
    assert not at.exception and not at.error
    run = jobs.wait(at.session_state["attn_cost_run"], timeout=300)
    assert run.status == jobs.DONE, run.reason
    assert {r["variant"] for r in run.summary["rows"]} == {"softmax", "gated_deltanet"}
    at.run()
    assert not at.exception
    assert any("slope" in str(c.value) for c in at.caption)
    # C10 needs softmax and linear: this run timed no linear attention, and the box says so
    assert any("Not measured yet" in i.value and "linear attention was not timed" in i.value for i in at.info)

    at.selectbox(key="attn_task").set_value("parity")
    at.multiselect(key="attn_mixers").set_value(["softmax", "kda"])
    at.slider(key="attn_length").set_value(8)
    at.slider(key="attn_steps").set_value(20)
    at.selectbox(key="attn_d").set_value(32)
    at.button(key="attn_train").click().run()
    assert not at.exception and not at.error
    run = jobs.wait(at.session_state["attn_train_run"], timeout=300)
    assert run.status == jobs.DONE, run.reason
    assert set(run.summary["accuracy"]) == {"softmax", "kda"}
    at.run()
    assert not at.exception
    # the Look inside tab opens the trained models
    at.selectbox(key="attn_in_mixer").set_value("kda").run()
    assert not at.exception and not at.error


def test_bad_settings_are_readable_errors(app):
    at = app
    at.multiselect(key="attn_mixers").set_value([])
    at.button(key="attn_train").click().run()
    assert not at.exception
    assert any("at least one mixer" in e.value for e in at.error)
    at.multiselect(key="attn_mixers").set_value(["power"])
    at.selectbox(key="attn_power").set_value(4)
    at.button(key="attn_train").click().run()
    assert not at.exception
    assert any("features per head" in e.value for e in at.error)
    at.multiselect(key="attn_cost_variants").set_value([])
    at.button(key="attn_cost_go").click().run()
    assert any("at least one variant" in e.value for e in at.error)


def test_pairs_sweep_draws_a_curve_per_mixer_and_the_claim_box(app):
    at = app
    assert any("Not measured yet" in i.value and "pairs sweep" in i.value for i in at.info)  # C11 before a run
    at.multiselect(key="attn_sw_mixers").set_value(["softmax", "linear"])
    at.multiselect(key="attn_sw_pairs").set_value([1, 2])
    at.slider(key="attn_sw_steps").set_value(50)
    at.selectbox(key="attn_sw_d").set_value(32)
    at.button(key="attn_sw_go").click().run()
    assert not at.exception and not at.error
    run = jobs.wait(at.session_state["attn_sweep_run"], timeout=300)
    assert run.status == jobs.DONE, run.reason
    at.run()
    assert not at.exception
    boxes = [m.value for m in at.markdown if "Does the lecture's claim hold here?" in m.value and "(C11)" in m.value]
    assert boxes
    verdicts = [x.value for x in (*at.success, *at.warning) if "in this run" in x.value]
    assert any("softmax min" in v for v in verdicts)  # the box is computed from the run's accuracies


def test_pairs_sweep_without_two_pair_counts_is_a_readable_error(app):
    at = app
    at.multiselect(key="attn_sw_pairs").set_value([4])
    at.button(key="attn_sw_go").click().run()
    assert not at.exception
    assert any("at least two numbers of pairs" in e.value for e in at.error)


@pytest.mark.parametrize("task, mixers, claim, figure", [
    ("pal", ["softmax", "linear"], "C11b", "softmax min"),
    ("par", ["deltanet", "deltanet_neg"], "C11c", "at 8 bits"),
])
def test_length_sweeps_draw_a_curve_per_mixer_and_their_claim_box(app, task, mixers, claim, figure):
    at = app
    assert any("Not measured yet" in i.value and f"'{at.button(key=f'attn_{task}_go').label}'" in i.value
               for i in at.info)  # the box before a run says which button measures it
    at.multiselect(key=f"attn_{task}_mixers").set_value(mixers)
    at.multiselect(key=f"attn_{task}_lengths").set_value([4, 8])
    at.slider(key=f"attn_{task}_steps").set_value(50)
    at.button(key=f"attn_{task}_go").click().run()
    assert not at.exception and not at.error
    run = jobs.wait(at.session_state[f"attn_{task}_run"], timeout=300)
    assert run.status == jobs.DONE, run.reason
    at.run()
    assert not at.exception
    assert any("Does the lecture's claim hold here?" in m.value and f"({claim})" in m.value for m in at.markdown)
    verdicts = [x.value for x in (*at.success, *at.warning) if "in this run" in x.value]
    assert any(figure in v for v in verdicts)  # computed from this run's accuracies


def test_length_sweep_with_one_length_is_a_readable_error(app):
    at = app
    at.multiselect(key="attn_par_lengths").set_value([8])
    at.button(key="attn_par_go").click().run()
    assert not at.exception
    assert any("at least two lengths" in e.value for e in at.error)


def test_negative_eigenvalue_deltanet_is_a_mixer_of_the_task_runs(app):
    at = app
    assert "deltanet_neg" in at.multiselect(key="attn_mixers").options or any(
        "negative eigenvalues" in o for o in at.multiselect(key="attn_mixers").options)
    at.selectbox(key="attn_mech_variant").set_value("deltanet_neg")
    at.button(key="attn_mech_check").click().run()
    assert not at.exception
    name, diff = at.session_state["attn_mech_diff"]
    assert name == "deltanet_neg" and diff < 1e-4


def test_last_time_is_measured_from_the_stored_run_of_the_same_settings():
    from labs.attention import sweep
    from ui.runs import last_time

    cfg = sweep.PairsSweepConfig(mixers=("softmax", "linear"), pairs=(1, 2), steps=3, eval_every=3, eval_examples=4,
                                 batch_size=2, d_model=8, seed=11)
    assert last_time(cfg) == ""  # never run here: no figure rather than a guess
    run = jobs.wait(jobs.submit(cfg, sweep.run, replay=False), timeout=120)
    assert run.status == jobs.DONE
    assert last_time(cfg) == f" — the last run of these settings here took {run.ended - run.started:.0f} s"
    assert last_time(sweep.PairsSweepConfig(mixers=("softmax", "linear"), pairs=(1, 2), steps=4, eval_every=3,
                                            eval_examples=4, batch_size=2, d_model=8, seed=11)) == ""
