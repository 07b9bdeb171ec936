"""Your own models on every page (AppTest): a tiny Hugging Face folder model and an endpoint (labs.serving.serve on
loopback), registered through a models file, are listed where they make sense and run there; training pages list
only local models and say why; log-likelihood scoring says it needs a local model; a bad file keeps the app going."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labs import arena
from labs.runs import jobs
from labs import models
from tests import byo

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "pages"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return byo.build_tiny_folder(tmp_path_factory.mktemp("byo-pages") / "tiny")


@pytest.fixture
def models_file(folder, server, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    path = byo.write_models_file(tmp_path / "models.toml", [byo.folder_entry(folder), byo.endpoint_entry(server)])
    monkeypatch.setenv("LLMLAB_MODELS_FILE", str(path))
    return path


def _open(path: Path) -> AppTest:
    at = AppTest.from_file(str(path), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


FOLDER, ENDPOINT = byo.FOLDER_NAME, byo.ENDPOINT_NAME + " · endpoint"  # how the pickers show them


def _captions(at: AppTest) -> str:
    return "\n".join(str(c.value) for c in at.caption)


def test_home_chats_with_the_folder_model_and_the_endpoint(models_file):
    at = _open(ROOT / "app.py")
    assert {FOLDER, ENDPOINT} <= set(at.selectbox(key="home_model").options)
    for key in (byo.FOLDER_KEY, byo.ENDPOINT_KEY):
        at.selectbox(key="home_model").set_value(key)
        at.slider(key="home_max_tokens").set_value(16)
        at.button(key="home_clear").click().run()
        at.chat_input(key="home_chat_input").set_value("Hello!").run()
        _ok(at)
        messages = at.session_state["home_messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"] and messages[-1]["content"].strip()
    table = at.dataframe[0].value
    assert set(table["model"]) >= {byo.FOLDER_NAME, byo.ENDPOINT_NAME}
    assert table.set_index("model").loc[byo.FOLDER_NAME, "params"] == "3M"  # counted from config.json


def test_home_add_a_model_form_checks_and_writes_the_entry(models_file, folder):
    at = _open(ROOT / "app.py")
    at.text_input(key="home_add_name").set_value("Added here")
    at.selectbox(key="home_add_source").set_value("path")
    at.text_input(key="home_add_location").set_value(str(folder))
    next(b for b in at.button if b.label == "Check and add").click().run()
    _ok(at)
    assert any("Config read: 3M parameters" in s.value for s in at.success)
    assert "user-added-here" in models.user_models().specs
    at.text_input(key="home_add_name").set_value("Not a model")
    at.text_input(key="home_add_location").set_value(str(folder.parent))
    next(b for b in at.button if b.label == "Check and add").click().run()
    assert not at.exception
    assert any("field 'path'" in e.value and "no config.json" in e.value for e in at.error)
    assert "user-not-a-model" not in models.user_models().specs


def test_fine_tuning_lists_local_models_only_and_trains_the_folder_model(models_file):
    at = _open(PAGES / "20_Fine_tuning.py")
    options = at.selectbox(key="sft_model").options
    assert FOLDER in options and ENDPOINT not in options
    assert f"Not listed: {byo.ENDPOINT_NAME} (endpoints)" in _captions(at)
    at.selectbox(key="sft_model").set_value(byo.FOLDER_KEY).run()
    _ok(at)
    assert at.multiselect(key="sft_lora_targets").options == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                               "up_proj", "down_proj"]
    at.select_slider(key="sft_n_examples").set_value(16)
    at.slider(key="sft_epochs").set_value(1)
    at.slider(key="sft_score_n").set_value(1)
    at.button(key="sft_train").click().run()
    _ok(at)
    run = jobs.wait(at.session_state["sft_run_id"], timeout=300)
    assert run.status == "done", run.reason
    assert run.config["model"] == byo.FOLDER_KEY and any("train_loss" in m for m in run.metrics)


def test_preference_page_lists_the_folder_model_and_makes_pairs_with_the_endpoint(models_file):
    at = _open(PAGES / "30_Preference_tuning.py")
    assert FOLDER in at.selectbox(key="dpo_model").options
    assert ENDPOINT not in at.selectbox(key="dpo_model").options
    at.selectbox(key="dpo_model").set_value(byo.FOLDER_KEY).run()
    _ok(at)
    assert ENDPOINT in at.selectbox(key="dpo_own_model").options
    at.selectbox(key="dpo_own_model").set_value(byo.ENDPOINT_KEY)
    at.text_input(key="dpo_own_prompt").set_value("Name a fruit.")
    at.slider(key="dpo_own_len").set_value(16)
    at.button(key="dpo_own_sample").click().run()
    _ok(at)
    cand = at.session_state["dpo_candidates"]
    assert cand["prompt"] == "Name a fruit." and cand["a"] and cand["b"]


def test_lora_explorer_reads_the_folder_models_shapes_and_trains_it(models_file):
    at = _open(PAGES / "40_LoRA_rank_explorer.py")
    assert FOLDER in at.selectbox(key="lora_calc_model").options
    at.selectbox(key="lora_calc_model").set_value(byo.FOLDER_KEY).run()
    _ok(at)
    # the page's options are the model's own matrix names
    assert [o.split("(")[-1].rstrip(")") for o in at.multiselect(key="lora_calc_targets").options] == [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert any(m.label == "Trainable (LoRA)" for m in at.metric)
    assert ENDPOINT not in at.selectbox(key="lora_model").options
    assert byo.ENDPOINT_NAME.split(" ")[0] in _captions(at)
    at.selectbox(key="lora_model").set_value(byo.FOLDER_KEY)
    at.number_input(key="lora_steps").set_value(2)
    at.number_input(key="lora_max_len").set_value(48)
    at.multiselect(key="lora_ranks").set_value([2])
    at.button(key="lora_sweep_go").click().run()
    _ok(at)
    run = jobs.wait(at.session_state["lora_sweep_ids"][0], timeout=300)
    assert run.status == "done", run.reason
    assert run.config["model_key"] == byo.FOLDER_KEY


def test_rag_answers_with_the_folder_model_and_the_endpoint(models_file):
    at = _open(PAGES / "50_RAG_playground.py")
    at.multiselect(key="rag_modules").set_value(["bisect"]).run()
    at.button(key="rag_build").click().run()
    _ok(at)
    assert {FOLDER, ENDPOINT} <= set(at.selectbox(key="rag_gen_model").options)
    for key in (byo.FOLDER_KEY, byo.ENDPOINT_KEY):
        at.selectbox(key="rag_gen_model").set_value(key)
        at.text_input(key="rag_question").set_value("How do I insert an item into a sorted list?")
        at.slider(key="rag_max_tokens").set_value(16)
        at.checkbox(key="rag_compare").set_value(False)
        at.slider(key="rag_threshold").set_value(0.0)
        at.button(key="rag_ask").click().run()
        _ok(at)
        assert at.session_state["rag_answers"]["rag"]  # random weights: any text, but the model answered
    at.checkbox(key="rag_rerank").set_value(True).run()
    assert any("LLM re-ranking scores log p(Yes)" in i.value for i in at.info)


def test_arena_named_battle_between_the_folder_model_and_the_endpoint(models_file, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    monkeypatch.delenv("LLMLAB_DB_URL", raising=False)
    at = _open(PAGES / "60_Arena.py")
    assert {byo.FOLDER_NAME, byo.ENDPOINT_NAME} <= set(at.multiselect(key="arena_contenders").value)
    at.toggle(key="arena_named").set_value(True).run()
    at.selectbox(key="arena_pick_a").set_value(byo.FOLDER_NAME)
    at.selectbox(key="arena_pick_b").set_value(byo.ENDPOINT_NAME)
    at.slider(key="arena_max_tokens").set_value(16)
    at.text_area(key="arena_prompt").set_value("Say hi")
    at.button(key="arena_go").click().run()
    _ok(at)
    battle = arena.get_battle(at.session_state["arena_battle_id"])
    assert battle.wait(90) and not battle.failed
    assert battle.a.contender.model_key == byo.FOLDER_KEY and battle.b.contender.model_key == byo.ENDPOINT_KEY
    assert battle.a.text.strip() and battle.b.text.strip()


def test_evaluation_scores_the_folder_model_and_says_an_endpoint_cannot_be_scored(models_file):
    at = _open(PAGES / "80_Evaluation.py")
    at.selectbox(key="eval_model").set_value(byo.ENDPOINT_KEY).run()
    assert not at.exception
    assert any("cannot be scored by log-likelihood" in w.value for w in at.warning)
    assert at.button(key="eval_go").disabled
    at.selectbox(key="eval_model").set_value(byo.FOLDER_KEY).run()
    assert not at.button(key="eval_go").disabled
    at.number_input(key="eval_limit").set_value(4)
    at.button(key="eval_go").click().run()
    _ok(at)
    run = jobs.wait(at.session_state["eval_bench_run"], timeout=300)
    assert run.status == "done" and run.config["model_key"] == byo.FOLDER_KEY
    at.run()
    for key in (byo.FOLDER_KEY, byo.ENDPOINT_KEY):  # generative eval with either
        at.selectbox(key="eval_gen_model").set_value(key)
        at.slider(key="eval_gen_tokens").set_value(4)
        at.button(key="eval_gen_go").click().run()
        _ok(at)
        run = jobs.wait(at.session_state["eval_gen_run"], timeout=300)
        assert run.status == "done", run.reason
        assert run.config["model_key"] == key
        at.run()
    at.selectbox(key="eval_judge_model").set_value(byo.ENDPOINT_KEY)
    at.button(key="eval_judge_go").click().run()
    _ok(at)
    run = jobs.wait(at.session_state["eval_judge_run"], timeout=300)
    assert run.status == "done", run.reason


def test_a_bad_models_file_is_reported_and_every_page_still_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    path = tmp_path / "models.toml"
    path.write_text('[[model]]\nname = "Oops"\npth = "/nowhere"\n')
    monkeypatch.setenv("LLMLAB_MODELS_FILE", str(path))
    at = _open(ROOT / "app.py")
    assert any("unknown field 'pth'" in w.value for w in at.warning)
    assert at.selectbox(key="home_model").options == ["SmolLM2-135M-Instruct", "Gemma-3-270M (base)"]
    at = _open(PAGES / "20_Fine_tuning.py")
    assert any("Models file: 1 problem" in e.label for e in at.sidebar.expander)
