"""labs.runs.results: a finished run reads back as its lab's dataclass; no run, a running run, a stopped run, a run of an
unknown kind or one whose files are missing read as None. The runs are stored fake run folders: a step function
writes what the real lab writes (summary, result.json, cost.json) without training anything."""
import dataclasses
import threading

import pytest

from labs.finetune import dpo
from labs.runs import jobs
from labs.finetune import lora
from labs.runs import results
from labs.attention import cost
from labs.attention import runs as attention_runs


@pytest.fixture
def manager(tmp_path, monkeypatch):
    """A private job manager whose (fake) runs live in their own home: pages tested later in the same process
    must not list a LoRA run whose adapter is /nowhere."""
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    return jobs.JobManager(max_workers=1)


def _finish(manager, config, writes: dict | None = None, summary: dict | None = None) -> jobs.Run:
    def fake(ctx):
        for name, obj in (writes or {}).items():
            ctx.save_json(name, obj)
        return summary

    run = manager.wait(manager.submit(config, fake, replay=False), 30)
    assert run.status == jobs.DONE, run.reason
    return run


LORA_SUMMARY = {"trainable_params": 1234, "base_val_loss": 3.0, "final_val_loss": 2.5, "task_score_before": 0.0,
                "task_score_after": 0.5, "train_seconds": 1.0, "adapter": "/nowhere/adapter"}


def test_lora_run_reads_as_lora_result(manager):
    config = lora.LoraRunConfig(r=2, targets=("q_proj",), tiny_models=True, seed=101)
    result = results.load_result(_finish(manager, config, summary=LORA_SUMMARY))
    assert isinstance(result, results.LoraResult)
    assert (result.r, result.targets) == (2, ("q_proj",))
    assert result.summary["final_val_loss"] == 2.5 and result.adapter == "/nowhere/adapter"


def test_dpo_run_reads_result_json(manager):
    stored = {"heldout": {"mean_margin": 0.3}, "samples": [{"prompt": "p", "reference": "a", "tuned": "b"}],
              "general": [], "general_drift_per_token": 0.01, "adapter": "adapter", "trainable": 10, "total": 100}
    result = results.load_result(_finish(manager, dpo.DPOConfig(n_train=4, seed=102), {"result.json": stored}))
    assert isinstance(result, results.DPOResult)
    assert result.heldout == {"mean_margin": 0.3} and result.samples[0]["tuned"] == "b"
    assert result.general_drift_per_token == pytest.approx(0.01) and (result.trainable, result.total) == (10, 100)


def test_attention_cost_run_reads_cost_json(manager):
    config = cost.CostConfig(variants=("softmax",), max_len=512, budget_s=5.0)
    rows = [{"variant": "softmax", "T": 256, "prefill_ms": 1.0}]
    result = results.load_result(_finish(manager, config, {"cost.json": {"rows": rows}}))
    assert isinstance(result, results.AttentionResult) and result.what == "cost"
    assert result.data["rows"] == rows


def test_no_run_and_a_run_that_saved_nothing_are_none(manager):
    assert results.load_result(None) is None
    # A DPO run whose result.json is missing (crashed mid-write, deleted) reads as None, not an exception.
    assert results.load_result(_finish(manager, dpo.DPOConfig(n_train=4, seed=103))) is None
    # A LoRA run that returned no summary has nothing to show either.
    assert results.load_result(_finish(manager, lora.LoraRunConfig(tiny_models=True, seed=104))) is None


def test_running_and_stopped_runs_are_none(manager):
    started, release = threading.Event(), threading.Event()

    def slow(ctx):
        ctx.set_total(100)
        started.set()
        for step in range(1, 101):
            release.wait(5)
            ctx.log(step=step, loss=1.0)
        return LORA_SUMMARY

    run_id = manager.submit(lora.LoraRunConfig(tiny_models=True, seed=105), slow, replay=False)
    assert started.wait(30)
    assert manager.get(run_id).active and results.load_result(manager.get(run_id)) is None
    manager.stop(run_id)
    release.set()
    run = manager.wait(run_id, 30)
    assert run.status == jobs.STOPPED
    assert results.load_result(run) is None  # only finished runs have a result …
    assert results.load_result(run, partial=True) is None  # … and this one saved nothing before Stop


def test_a_run_of_an_unknown_kind_is_none(manager):
    @dataclasses.dataclass(frozen=True)
    class NotALabConfig:
        seed: int = 0

    assert results.load_result(_finish(manager, NotALabConfig(), summary={"x": 1})) is None


def test_runs_lists_by_config_class():
    config = cost.CostConfig(variants=("linear",), max_len=512, budget_s=5.0, seed=106)
    run = jobs.wait(jobs.submit(config, lambda ctx: {"rows": []}, replay=False), 30)
    assert run.kind == jobs.kind_of(cost.CostConfig)
    listed = results.runs(cost.CostConfig, status=(jobs.DONE,))
    assert run.id in [r.id for r in listed]
    assert all(r.kind == "CostConfig" for r in listed)
    assert not any(r.id == run.id for r in results.runs(lora.LoraRunConfig))


def test_attention_task_run_reads_back_its_config_and_a_table_row(manager):
    from labs.attention import model

    config = model.TrainConfig(task="mqar", mixers=("softmax", "kda"), num_kv_pairs=4, steps=20, seed=107)
    summary = {"accuracy": {"softmax": 0.9, "kda": 0.5}, "seq_len": 16, "chance": 0.1}
    run = _finish(manager, config, summary=summary)
    assert isinstance(results.load_result(run), results.AttentionResult)
    assert attention_runs.train_config(run) == config  # mixers come back as a tuple
    empty = _finish(manager, model.TrainConfig(task="parity", steps=20, seed=108), summary={"seq_len": 8})
    rows = attention_runs.task_rows([run, empty])
    assert len(rows) == 1  # a run without accuracies is left out
    assert rows[0]["task"] == "mqar" and rows[0]["pairs"] == 4 and rows[0]["length"] == 16
    from labs.attention.mixers import VARIANTS

    assert rows[0][VARIANTS["softmax"]] == 0.9 and rows[0][VARIANTS["kda"]] == 0.5  # one column per mixer, by name
