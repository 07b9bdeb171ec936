"""The LoRA page: calculator answers at once and refuses bad input; a sweep trains, replays, and feeds the
ΔW analysis; the merge check reports a near-zero logit difference. Tiny models throughout."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

from labs.runs import jobs

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "40_LoRA_rank_explorer.py")


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def _errors(at):
    return " ".join(e.value for e in at.error)


def _claim(at, claim_id):
    return [m.value for m in at.markdown if "Does the lecture's claim hold here?" in m.value and f"({claim_id})" in m.value]


def test_calculator_and_bad_input(monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert _metric(at, "Trainable (LoRA)") == "230.4k"  # SmolLM2: 30 layers × 4 × ((576+576) + (192+576))
    at.number_input(key="lora_calc_r").set_value(0).run()
    assert "at least 1" in _errors(at)
    at.number_input(key="lora_calc_r").set_value(5000).run()
    assert "larger than" in _errors(at)
    at.number_input(key="lora_calc_r").set_value(4)
    at.multiselect(key="lora_calc_targets").set_value([]).run()
    assert "at least one weight matrix" in _errors(at)
    at.multiselect(key="lora_calc_targets").set_value(["q_proj", "v_proj"])
    at.selectbox(key="lora_calc_model").set_value("gpt-like").run()
    assert not at.exception
    assert _metric(at, "Trainable (LoRA)") == "18.9M"
    assert _metric(at, "Fewer trainable parameters").replace(",", "").rstrip("×").isdigit()


def test_sweep_inside_and_merge(monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.number_input(key="lora_steps").set_value(3)
    at.number_input(key="lora_max_len").set_value(48)
    at.multiselect(key="lora_ranks").set_value([2, 8])
    at.button(key="lora_sweep_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    ids = at.session_state["lora_sweep_ids"]
    assert len(ids) == 2
    for run_id in ids:
        assert jobs.wait(run_id, timeout=300).status == jobs.DONE
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(df.value for df in at.dataframe if "held-out loss after" in df.value.columns)
    assert sorted(table["r"].tolist()) == [2, 8]
    assert _claim(at, "C6")  # the claim box is computed from the finished sweep
    assert any("best of rank 1–2" in x.value for x in (*at.success, *at.warning))
    # The same sweep again replays the stored runs at once.
    at.button(key="lora_sweep_go").click().run()
    assert all(jobs.get(i).replayed for i in at.session_state["lora_sweep_ids"])
    # Inside ΔW: spectra, the r=2 vs r=8 similarity heatmap, the W0 table render for the finished runs.
    assert at.selectbox(key="lora_sim_where").value  # both adapters share (layer, matrix) pairs to compare
    assert any("amplification" in df.value.columns for df in at.dataframe)
    # Merge check on a random adapter: merged and unmerged logits agree.
    at.button(key="lora_merge_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    result = at.session_state["lora_merge_result"]
    assert result["max_abs_diff"] < 1e-4 < result["adapter_effect"]
    # Bad input: no matrices for the sweep.
    at.multiselect(key="lora_targets").set_value([])
    at.button(key="lora_sweep_go").click().run()
    assert "at least one weight matrix" in _errors(at)


def test_equal_budget_comparison_fills_the_c7_box(monkeypatch):
    monkeypatch.setenv("LLMLAB_TINY_MODELS", "1")
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert _claim(at, "C7") and any("Not measured yet" in i.value and "Train these" in i.value for i in at.info)
    at.number_input(key="lora_steps").set_value(3)
    at.number_input(key="lora_max_len").set_value(48)
    at.multiselect(key="lora_which").set_value(["W_q", "W_q+W_v"])
    at.button(key="lora_which_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    for run_id in at.session_state["lora_which_ids"]:
        assert jobs.wait(run_id, timeout=300).status == jobs.DONE
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("task score W_q+W_v" in x.value and "held-out loss" in x.value for x in (*at.success, *at.warning))


def test_inside_tab_caches_follow_the_adapter_files(tmp_path):
    """The Inside ΔW tab computes its SVDs once per adapter: the cache key changes when the folder is written again."""
    from ui.lora import inside

    (tmp_path / "adapter_model.safetensors").write_bytes(b"1")
    first = inside._stamp(str(tmp_path))
    (tmp_path / "adapter_model.safetensors").write_bytes(b"12")
    assert inside._stamp(str(tmp_path)) != first and first
    assert inside._stamp(str(tmp_path / "missing")) == ()
