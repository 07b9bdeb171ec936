import dataclasses
import time

import pytest
import torch

from labs.runs import compare, jobs, provenance
from labs.training import loop as training


@dataclasses.dataclass(frozen=True)
class CountConfig:
    steps: int = 5
    nan_at: int = 0
    crash: bool = False
    sleep: float = 0.0
    seed: int = 0


def count(ctx):
    ctx.set_total(ctx.config.steps)
    for step in range(1, ctx.config.steps + 1):
        if ctx.config.crash and step == 2:
            raise RuntimeError("boom")
        time.sleep(ctx.config.sleep)
        loss = float("nan") if step == ctx.config.nan_at else 1.0 / step
        ctx.log(step=step, loss=loss)
    ctx.save_json("result.json", {"ok": True})
    return {"final_loss": loss}


@pytest.fixture
def manager():
    return jobs.JobManager(max_workers=1)


def test_run_streams_metrics_and_persists(manager):
    run_id = manager.submit(CountConfig(), count, owner="me")
    run = manager.wait(run_id, 30)
    assert run.status == jobs.DONE
    assert [m["step"] for m in run.metrics] == [1, 2, 3, 4, 5]
    assert run.summary == {"final_loss": 0.2}
    assert (run.artifacts / "result.json").exists()
    # A fresh manager (an app restart) finds it on disk, with its metrics.
    again = jobs.JobManager(max_workers=1).get(run_id)
    assert again.status == jobs.DONE and len(again.metrics) == 5


def test_same_config_and_seed_replays_without_running(manager):
    first = manager.submit(CountConfig(steps=3), count)
    manager.wait(first)
    calls = []
    second = manager.submit(CountConfig(steps=3), lambda ctx: calls.append(1))
    assert second == first and not calls
    assert manager.get(second).replayed
    other_seed = manager.submit(CountConfig(steps=3, seed=1), count)
    assert other_seed != first


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    model: str = "smollm2-135m-instruct"
    steps: int = 2
    seed: int = 0


def _fresh(manager, run_id):
    """What another process (or a restart) sees: the run as stored on disk."""
    manager._runs.pop(run_id, None)
    return manager.get(run_id)


def test_a_stale_run_is_run_again_not_replayed(manager, monkeypatch):
    first = manager.submit(CountConfig(steps=3), count)
    manager.wait(first)
    assert jobs.stale_reason(_fresh(manager, first)) == ""
    monkeypatch.setattr(provenance, "code_version", lambda: "other-code")  # the labs code changed since
    assert "another version of the labs code" in jobs.stale_reason(_fresh(manager, first))
    calls = []
    again = manager.submit(CountConfig(steps=3), lambda ctx: calls.append(1) or {})
    manager.wait(again)
    assert again == first and calls == [1] and not manager.get(again).replayed
    assert manager.get(again).made_with["code"] == "other-code"


def test_a_run_is_stale_when_its_model_file_changes(manager, monkeypatch):
    monkeypatch.setattr(jobs.settings, "tiny_models", lambda: False)
    monkeypatch.setattr(provenance, "model_fingerprint", lambda key: "file-1")
    first = manager.submit(ModelConfig(), lambda ctx: {"ok": True})
    assert manager.wait(first).status == jobs.DONE
    assert manager.get(first).made_with["models"] == {"smollm2-135m-instruct": "file-1"}
    assert manager.submit(ModelConfig(), lambda ctx: {}) == first and manager.get(first).replayed
    monkeypatch.setattr(provenance, "model_fingerprint", lambda key: "file-2")  # a new GGUF under the same key
    assert "model file of smollm2-135m-instruct changed" in jobs.stale_reason(_fresh(manager, first))


def test_a_cut_short_or_corrupt_stored_run_is_never_replayed(manager):
    first = manager.submit(CountConfig(steps=4), count)
    manager.wait(first)
    folder = manager.get(first).artifacts
    (folder / "result.json").write_text("{")  # cut short
    assert "files changed" in jobs.stale_reason(_fresh(manager, first))
    calls = []
    manager.wait(manager.submit(CountConfig(steps=4), lambda ctx: calls.append(1) or {}))
    assert calls == [1]
    (folder / "run.json").write_text("{not json")  # corrupt: unreadable, so it runs again
    manager._runs.pop(first, None)
    manager.wait(manager.submit(CountConfig(steps=4), lambda ctx: calls.append(2) or {}))
    assert calls == [1, 2]


def test_a_replayed_run_can_be_run_live_instead(manager):
    first = manager.submit(CountConfig(steps=3), count)
    manager.wait(first)
    calls = []
    assert manager.submit(CountConfig(steps=3), lambda ctx: calls.append(1) or {"live": True}) == first
    assert manager.get(first).replayed and manager.can_run_live(first)
    assert manager.run_live(first) == first
    run = manager.wait(first)
    assert calls == [1] and run.summary == {"live": True} and not run.replayed


def test_submitting_twice_while_running_does_not_start_twice(manager):
    a = manager.submit(CountConfig(steps=20, sleep=0.02), count)
    b = manager.submit(CountConfig(steps=20, sleep=0.02), count)
    assert a == b
    assert len(manager.active()) == 1
    manager.wait(a)


def test_stop_within_one_step_and_stop_on_finished_run(manager):
    run_id = manager.submit(CountConfig(steps=1000, sleep=0.01), count, owner="me")
    while manager.get(run_id).step < 3:
        time.sleep(0.01)
    assert "belongs to someone else" in manager.stop(run_id, owner="other")
    manager.stop(run_id, owner="me")
    run = manager.wait(run_id, 10)
    assert run.status == jobs.STOPPED and run.step < 1000
    assert "already" in manager.stop(run_id)
    assert "no run" in manager.stop("nope")


def test_queue_positions(manager):
    a = manager.submit(CountConfig(steps=30, sleep=0.02), count)
    b = manager.submit(CountConfig(steps=2, seed=7), count)
    c = manager.submit(CountConfig(steps=2, seed=8), count)
    time.sleep(0.1)
    assert manager.get(b).position == 1 and manager.get(c).position == 2
    assert [r.id for r in manager.active()][0] == a
    manager.wait(c)


def test_nan_loss_and_crash_end_with_a_reason(manager):
    nan = manager.wait(manager.submit(CountConfig(nan_at=3), count))
    assert nan.status == jobs.FAILED and "diverged" in nan.reason and nan.step == 3
    crash = manager.wait(manager.submit(CountConfig(crash=True), count))
    assert crash.status == jobs.FAILED and "boom" in crash.reason
    assert (crash.artifacts / "traceback.txt").exists()


def test_diff_and_csv(manager):
    a = manager.wait(manager.submit(CountConfig(steps=2), count))
    b = manager.wait(manager.submit(CountConfig(steps=3, seed=4), count))
    keys = {row["key"] for row in compare.diff_configs(a, b)}
    assert keys == {"steps", "seed"}
    assert compare.metrics_csv(b).splitlines()[0].startswith("step,loss")
    assert {r.id for r in manager.list_runs("CountConfig")} >= {a.id, b.id}


def test_run_kinds_are_named_by_their_config_class(manager):
    run = manager.wait(manager.submit(CountConfig(steps=2), count))
    assert jobs.kind_of(CountConfig) == jobs.kind_of(CountConfig()) == run.kind == "CountConfig"
    assert jobs.kind_of({"a": 1}) == "dict"
    # the class and the stored name select the same runs, so runs stored before keep loading
    assert [r.id for r in manager.list_runs(CountConfig)] == [r.id for r in manager.list_runs("CountConfig")]
    assert run.id in {r.id for r in manager.list_runs(CountConfig)}


@dataclasses.dataclass(frozen=True)
class TinyLoraConfig:
    steps: int = 4
    lr: float = 1e-2
    seed: int = 0


def test_a_real_lora_run_lowers_the_loss(manager, tiny):
    """A few steps of LoRA on the tiny Llama, driven through the job queue like a page would."""

    def train(ctx):
        torch.manual_seed(ctx.seed)
        model, _, _ = training.trainable_model(tiny, "lora", training.LoraSettings(r=4, alpha=8))
        ex = training.tokenize_example(tiny.tokenizer, "Say the colour:", " blue blue blue")
        batch = training.collate([ex], tiny.tokenizer.eos_token_id)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=ctx.config.lr)
        for step in range(1, ctx.config.steps + 1):
            loss, n = training.causal_lm_loss(model, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ctx.log(step=step, loss=loss.item(), tokens=n)
        return {"final_loss": loss.item()}

    run = manager.wait(manager.submit(TinyLoraConfig(), train), 120)
    assert run.status == jobs.DONE, run.reason
    losses = [m["loss"] for m in run.metrics]
    assert losses[-1] < losses[0]


def test_a_run_whose_folder_vanishes_still_ends(manager):
    import shutil

    def crash_after_delete(ctx):
        shutil.rmtree(ctx.artifacts)
        ctx.log(step=1, loss=1.0)
        raise RuntimeError("after delete")

    run = manager.wait(manager.submit(CountConfig(steps=99), crash_after_delete), 10)
    assert run.status == jobs.FAILED and "after delete" in run.reason
