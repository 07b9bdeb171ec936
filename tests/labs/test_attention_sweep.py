"""The MQAR pairs sweep (claim C11): config validation, per-pair-count accuracies from one run, the verdict."""
from __future__ import annotations

import pytest

from labs import jobs, lessons
from labs.attention import sweep


def test_config_refuses_what_cannot_run():
    with pytest.raises(ValueError, match="at least two numbers of pairs"):
        sweep.PairsSweepConfig(pairs=(4,))
    with pytest.raises(ValueError, match="vocab/2"):
        sweep.PairsSweepConfig(pairs=(2, 30))  # 30 pairs need 30 distinct keys; vocabulary 48 has 22
    with pytest.raises(ValueError, match="at least one mixer"):
        sweep.PairsSweepConfig(mixers=())
    with pytest.raises(ValueError, match="divide evenly"):
        sweep.PairsSweepConfig(d_model=30)
    assert sweep.PairsSweepConfig().model_config("kda").max_len == 4 * max(sweep.PairsSweepConfig().pairs)


def test_latest_accuracy_takes_the_last_evaluation_of_each_pair_count():
    metrics = [{"step": 1, "loss": 3.0},
               {"step": 50, "acc_softmax_2": 0.5, "acc_softmax_8": 0.2, "acc_gated_deltanet_2": 0.4},
               {"step": 100, "acc_softmax_2": 1.0, "acc_softmax_8": 0.95, "acc_gated_deltanet_2": 0.9,
                "acc_gated_deltanet_8": 0.3}]
    acc = sweep.latest_accuracy(metrics, ["softmax", "gated_deltanet", "linear"], [2, 8])
    assert acc == {"softmax": {2: 1.0, 8: 0.95}, "gated_deltanet": {2: 0.9, 8: 0.3}}


def test_verdict_is_not_measured_unless_the_run_finished_with_softmax():
    cfg = {"mixers": ["softmax", "linear"], "pairs": [2, 8]}
    rows = [{"acc_softmax_2": 1.0, "acc_softmax_8": 0.99, "acc_linear_2": 0.9, "acc_linear_8": 0.2}]
    assert sweep.verdict(False, rows, cfg, "stopped").verdict == lessons.NOT_MEASURED
    assert "stopped" in sweep.verdict(False, rows, cfg, "stopped").reason
    assert sweep.verdict(True, rows, cfg).verdict == lessons.HOLDS
    no_softmax = sweep.verdict(True, rows[:1], {"mixers": ["linear"], "pairs": [2, 8]})
    assert no_softmax.verdict == lessons.NOT_MEASURED


def test_a_short_sweep_runs_as_a_job_and_scores_every_pair_count():
    cfg = sweep.PairsSweepConfig(mixers=("softmax", "deltanet"), pairs=(1, 3), steps=6, eval_every=3,
                                 eval_examples=8, batch_size=4, d_model=16, seed=7)
    run = jobs.wait(jobs.submit(cfg, sweep.run, replay=False), timeout=120)
    assert run.status == jobs.DONE, run.reason
    acc = sweep.latest_accuracy(run.metrics, cfg.mixers, cfg.pairs)
    assert set(acc) == {"softmax", "deltanet"} and all(set(a) == {1, 3} for a in acc.values())
    assert all(0.0 <= x <= 1.0 for a in acc.values() for x in a.values())
    assert [m["pairs"] for m in run.metrics[:4]] == [1, 3, 1, 3]  # the pair counts take turns
