"""The MQAR pairs sweep (claim C11) and the palindrome / parity length sweeps (C11b, C11c): config validation,
per-size accuracies from one run, the verdicts on synthetic figures."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from labs.runs import jobs
from labs.runs import lessons
from labs.attention import sweep, tasks
from labs.attention.model import SideBySide, TinyLM, mixer_losses


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


def test_mixers_side_by_side_in_threads_equal_the_one_thread_loop_bit_for_bit():
    cfg = sweep.PairsSweepConfig(mixers=("softmax", "linear", "kda"), pairs=(2, 8), d_model=16, batch_size=8)

    def gradients(workers: int):
        models = {}
        for name in cfg.mixers:
            torch.manual_seed(0)
            models[name] = TinyLM(cfg.model_config(name))
        with SideBySide(len(models), workers=workers) as side:
            names = side.map(lambda model: threading.current_thread().name, models)
            out = mixer_losses(models, *tasks.generate(cfg.task(8), 8, seed=3), side=side)
        assert out.backward_done and torch.isfinite(out.loss)
        return names, out.metrics, {f"{n}.{k}": p.grad for n, m in models.items() for k, p in m.named_parameters()}

    names1, metrics1, grads1 = gradients(1)
    names2, metrics2, grads2 = gradients(2)
    assert not any(n.startswith("mixer") for n in names1.values())  # one worker: here, on one thread
    assert all(n.startswith("mixer") for n in names2.values())       # two: in the pool's threads
    assert metrics1 == metrics2
    assert grads1.keys() == grads2.keys() and all(torch.equal(grads1[k], grads2[k]) for k in grads1)


def test_side_by_side_starts_the_slowest_model_first_and_keeps_the_order_of_results():
    naps, started = {"fast": 0.0, "slow": 0.05, "middle": 0.02}, []

    def work(name):
        started.append(name)
        time.sleep(naps[name])
        return name.upper()

    with SideBySide(3, workers=2) as side:
        first = side.map(work, {n: n for n in naps})
        started.clear()
        second = side.map(work, {n: n for n in naps})
    assert list(first) == list(second) == list(naps) and second["slow"] == "SLOW"  # results in the models' order
    assert started[0] == "slow"  # the slowest of the last call goes first


def test_kda_trains_in_shorter_chunks_than_the_other_mixers():
    cfg = sweep.PairsSweepConfig()
    assert cfg.model_config("kda").mixer_config().chunk_size < cfg.model_config("deltanet").mixer_config().chunk_size


# --- the length sweeps: palindrome (C11b) and parity (C11c) ---------------------------------------------------------

def test_length_sweep_configs_and_refusals():
    assert sweep.ParitySweepConfig().task == "parity" and "deltanet_neg" in sweep.ParitySweepConfig().mixers
    pal = sweep.PalindromeSweepConfig()
    assert pal.model_config("linear").max_len == 2 * max(pal.lengths)
    assert sweep.ParitySweepConfig().model_config("softmax").vocab_size >= 3
    with pytest.raises(ValueError, match="at least two lengths"):
        sweep.ParitySweepConfig(lengths=(8, 8))
    with pytest.raises(ValueError, match="palindrome or the parity"):
        sweep.LengthSweepConfig(task="mqar")
    with pytest.raises(ValueError, match="Unknown mixer"):
        sweep.PalindromeSweepConfig(mixers=("rnn",))


def test_second_half_scores_only_the_later_positions():
    labels = torch.tensor([[1, 2, 2, 1, 1], [2, 2, 1, 1, 2]])
    out = sweep.second_half(labels)
    assert (out[:, :2] == tasks.IGNORE).all() and torch.equal(out[:, 2:], labels[:, 2:])


def test_c11b_palindrome_verdict_on_synthetic_figures():
    good = {"softmax": {4: 1.0, 32: 0.97}, "linear": {4: 1.0, 32: 0.5}, "deltanet": {4: 0.99, 32: 0.7}}
    v = lessons.reversal_vs_state(good)
    assert v.verdict == lessons.HOLDS and v.claim == "C11b" and "linear 100% → 50%" in v.figure
    softmax_falls = dict(good, softmax={4: 1.0, 32: 0.6})
    assert lessons.reversal_vs_state(softmax_falls).verdict == lessons.FAILS
    state_holds = dict(good, deltanet={4: 1.0, 32: 0.9})
    v = lessons.reversal_vs_state(state_holds)
    assert v.verdict == lessons.FAILS and "deltanet loses only 10%" in v.reason
    assert lessons.reversal_vs_state({"softmax": {4: 1.0, 32: 1.0}}).verdict == lessons.NOT_MEASURED
    assert lessons.reversal_vs_state({"linear": {4: 1.0, 32: 0.1}}).verdict == lessons.NOT_MEASURED
    assert lessons.CLAIMS["C11b"].page == "Linear vs full attention"


def test_c11c_parity_verdict_on_synthetic_figures():
    good = {"softmax": {8: 0.8, 32: 0.5}, "linear": {8: 0.8, 32: 0.51}, "deltanet": {8: 0.78, 32: 0.5},
            "deltanet_neg": {8: 1.0, 32: 0.99}}
    v = lessons.parity_needs_negative_eigenvalues(good)
    assert v.verdict == lessons.HOLDS and v.claim == "C11c" and v.figures["longest"] == 32
    assert "deltanet_neg 99%" in v.figure and "softmax 50%" in v.figure  # softmax reported, not judged
    assert lessons.parity_needs_negative_eigenvalues(dict(good, softmax={8: 1.0, 32: 1.0})).verdict == lessons.HOLDS
    v = lessons.parity_needs_negative_eigenvalues(dict(good, deltanet_neg={8: 1.0, 32: 0.7}))
    assert v.verdict == lessons.FAILS and "deltanet_neg reaches only 70%" in v.reason
    v = lessons.parity_needs_negative_eigenvalues(dict(good, linear={8: 1.0, 32: 0.95}))
    assert v.verdict == lessons.FAILS and "linear reaches 95%" in v.reason
    no_linear = {m: a for m, a in good.items() if m != "linear"}
    assert lessons.parity_needs_negative_eigenvalues(no_linear).verdict == lessons.HOLDS
    for missing in ("deltanet", "deltanet_neg"):
        rest = {m: a for m, a in good.items() if m != missing}
        assert lessons.parity_needs_negative_eigenvalues(rest).verdict == lessons.NOT_MEASURED
    assert lessons.parity_needs_negative_eigenvalues({}).verdict == lessons.NOT_MEASURED


def test_length_verdict_picks_the_claim_and_needs_a_finished_run():
    rows = [{"acc_softmax_4": 1.0, "acc_softmax_8": 1.0, "acc_linear_4": 1.0, "acc_linear_8": 0.3}]
    pal = {"task": "palindrome", "mixers": ["softmax", "linear"], "lengths": [4, 8]}
    assert sweep.length_verdict(True, rows, pal).claim == "C11b"
    assert sweep.length_verdict(True, rows, pal).verdict == lessons.HOLDS
    stopped = sweep.length_verdict(False, rows, pal, "stopped")
    assert stopped.verdict == lessons.NOT_MEASURED and "stopped" in stopped.reason
    par = {"task": "parity", "mixers": ["deltanet", "deltanet_neg"], "lengths": [8, 16]}
    rows = [{"acc_deltanet_8": 0.7, "acc_deltanet_16": 0.5, "acc_deltanet_neg_8": 1.0, "acc_deltanet_neg_16": 0.98}]
    v = sweep.length_verdict(True, rows, par)
    assert v.claim == "C11c" and v.verdict == lessons.HOLDS


@pytest.mark.parametrize("make", [sweep.PalindromeSweepConfig, sweep.ParitySweepConfig])
def test_a_tiny_length_sweep_runs_as_a_job_and_scores_every_length(make):
    cfg = make(mixers=("softmax", "deltanet_neg"), lengths=(4, 6), steps=4, eval_every=2, eval_examples=8,
               batch_size=4, d_model=16, seed=3)
    run = jobs.wait(jobs.submit(cfg, sweep.run_lengths, replay=False), timeout=120)
    assert run.status == jobs.DONE, run.reason
    acc = sweep.latest_accuracy(run.metrics, cfg.mixers, cfg.lengths)
    assert set(acc) == {"softmax", "deltanet_neg"} and all(set(a) == {4, 6} for a in acc.values())
    assert all(0.0 <= x <= 1.0 for a in acc.values() for x in a.values())
    assert [m["length"] for m in run.metrics] == [4, 6, 4, 6]  # the lengths take turns
    assert run.summary["lengths"] == [4, 6] and run.summary["task"] == cfg.task
    assert set(run.summary["state_numbers"]) == {"softmax", "deltanet_neg"}
    assert sweep.length_verdict(True, run.metrics, run.config).claim == ("C11b" if cfg.task == "palindrome" else "C11c")
