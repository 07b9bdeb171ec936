"""Each lesson criterion on synthetic figures: one case that holds, one that does not, and missing figures give
'not measured yet' (never a guessed verdict)."""
import json
import math

import pytest

from labs.runs import lessons as L
from labs.mixtures import calculator


def test_every_claim_has_a_statement_and_a_criterion():
    assert {"C1", "C2", "C5", "C10", "C12", "C13", "C14", "M4"} <= set(L.CLAIMS)
    assert all(c.statement and c.criterion and c.page for c in L.CLAIMS.values())


def test_c1_mixture_epochs():
    rows = [{"source": "a", "epochs": 1.0, "published epochs": 1.02}, {"source": "b", "epochs": 0.5, "published epochs": None}]
    assert L.mixture_epochs(rows).verdict == L.HOLDS
    rows.append({"source": "c", "epochs": 3.44, "published epochs": 2.9})
    v = L.mixture_epochs(rows, source="Table 2.2")
    assert v.verdict == L.FAILS and "c: computed 3.44, published 2.9" in v.reason and v.figures["published_source"]
    assert L.mixture_epochs([{"source": "a", "epochs": 1, "published epochs": None}]).verdict == L.NOT_MEASURED
    # the real GPT-3 table: WebText2 and Wikipedia do not follow from the rounded weights
    real, _ = calculator.mixture_table(list(calculator.GPT3.sources), calculator.GPT3.budget_b)
    v = L.mixture_epochs(real)
    assert v.verdict == L.FAILS and "WebText2" in v.reason and "Wikipedia" in v.reason
    assert v.figure.startswith("3 of 5")


def test_c2_labels_shifted():
    assert L.labels_shifted([2.0, 4.0], 3.0, 9.0).verdict == L.HOLDS
    assert L.labels_shifted([2.0, 4.0], 3.5, 9.0).verdict == L.FAILS
    assert "cannot tell" in L.labels_shifted([2.0, 4.0], 3.0, 3.05).reason
    assert L.labels_shifted([], 3.0, 9.0).verdict == L.NOT_MEASURED
    assert L.labels_shifted([2.0, math.nan], 3.0, 9.0).verdict == L.NOT_MEASURED


def test_c3_overfitting():
    steps = [0, 50, 100, 150]
    assert L.overfitting(steps, [3.0, 2.0, 1.5, 1.0], [3.0, 2.2, 2.3, 2.5]).verdict == L.HOLDS
    falling = L.overfitting(steps, [3.0, 2.0, 1.5, 1.0], [3.0, 2.5, 2.2, 2.1])
    assert falling.verdict == L.FAILS and "did not turn up" in falling.reason
    assert L.overfitting(steps, [3.0, 2.0, 2.5, 2.9], [3.0, 2.2, 2.3, 2.5]).reason == "training loss did not keep falling"
    assert L.overfitting([0, 1], [1, 1], [1, 1]).verdict == L.NOT_MEASURED


def test_c4_c6_c7_c8():
    assert L.small_set_teaches_format(0.0, 1.0, 64).verdict == L.HOLDS
    assert L.small_set_teaches_format(0.0, 0.5, 64).verdict == L.FAILS
    assert L.low_rank_suffices({1: 0.88, 8: 0.63}).verdict == L.HOLDS
    assert L.low_rank_suffices({1: 0.4, 2: 0.5, 8: 0.63}).verdict == L.FAILS
    assert L.low_rank_suffices({4: 0.4}).verdict == L.NOT_MEASURED
    assert L.qv_beats_q(0.7, 0.6).verdict == L.HOLDS and L.qv_beats_q(0.6, 0.6).verdict == L.FAILS
    v = L.dpo_learns([0.0, 0.5, 1.2], [0.5, 0.6, 0.8], [0.0, -0.1, -0.3])
    assert v.verdict == L.HOLDS and v.figures["chosen_reward_fell"] is True
    assert L.dpo_learns([0.0, -0.2], [0.5, 0.6], []).verdict == L.FAILS
    assert L.dpo_learns([0.0], [0.5], []).verdict == L.NOT_MEASURED


def test_c5_cost_grows_with_blocks():
    assert L.cost_grows_with_blocks({0: 0.05, 1: 0.4, 2: 0.7, 4: 1.3}).verdict == L.HOLDS
    flat = L.cost_grows_with_blocks({0: 1.0, 4: 1.2})
    assert flat.verdict == L.FAILS and "1.2×" in flat.reason
    dip = L.cost_grows_with_blocks({0: 0.1, 1: 0.8, 2: 0.5, 4: 1.3})
    assert dip.verdict == L.FAILS and "from 1 to 2" in dip.reason
    assert L.cost_grows_with_blocks({0: 0.1}).verdict == L.NOT_MEASURED


def test_c9_rag_beats_no_rag():
    rag, no = [1] * 20 + [0] * 10, [0] * 25 + [1] * 5
    assert L.rag_beats_no_rag(rag, no, 0.7, 0.6).verdict == L.HOLDS
    worse_hybrid = L.rag_beats_no_rag(rag, no, 0.4, 0.6)
    assert worse_hybrid.verdict == L.FAILS and "hybrid" in worse_hybrid.reason
    assert L.rag_beats_no_rag([1, 0, 1, 0], [0, 1, 1, 0]).verdict == L.FAILS
    assert L.rag_beats_no_rag([], []).verdict == L.NOT_MEASURED


def test_c10_attention_slopes():
    v = L.attention_slopes(1.95, 1.05)
    assert v.verdict == L.HOLDS and v.figures["softmax_per_doubling"] == pytest.approx(2 ** 1.95)
    assert L.attention_slopes(1.3, 1.0).verdict == L.FAILS
    assert "linear slope" in L.attention_slopes(2.0, 1.6).reason
    assert L.attention_slopes(None, 1.0).verdict == L.NOT_MEASURED
    clean = {"softmax": [(1024, 10.0), (2048, 40.0), (4096, 160.0)], "linear": [(1024, 5.0), (2048, 10.0)]}
    assert L.attention_slopes(2.0, 1.0, times=clean).verdict == L.HOLDS
    busy = {"softmax": [(512, 63.2), (1024, 60.0), (2048, 134.8)]}  # a busy machine: more work, less time
    noisy = L.attention_slopes(1.4, 0.0, times=busy)
    assert noisy.verdict == L.NOT_MEASURED and "63.2 ms at 512 tokens but 60.0 ms at 1024" in noisy.reason


def test_c11_recall_vs_state():
    good = {"softmax": {4: 1.0, 12: 0.97}, "linear": {4: 1.0, 12: 0.3}, "kda": {4: 0.97, 12: 0.5}}
    assert L.recall_vs_state(good).verdict == L.HOLDS
    issue = {"softmax": {4: 0.85, 12: 0.11}, "linear": {4: 1.0, 12: 0.19}}  # issue 14's measurement
    assert L.recall_vs_state(issue).verdict == L.FAILS
    assert L.recall_vs_state({"softmax": {4: 1.0}}).verdict == L.NOT_MEASURED


def test_c12_hybrid_cache():
    assert L.hybrid_cache(0.75, 0.7493, 1_000_000).verdict == L.HOLDS
    assert L.hybrid_cache(20 / 27, 0.74, 1_000_000).verdict == L.FAILS
    assert L.hybrid_cache(math.nan, 0.7, 10).verdict == L.NOT_MEASURED


def test_c13_judge_position_bias_uses_a_wilson_interval():
    v = L.judge_position_bias(20, 24)
    assert v.verdict == L.HOLDS and 0 < v.figures["ci_low"] < 20 / 24 < v.figures["ci_high"] <= 1
    none = L.judge_position_bias(0, 24)
    assert none.verdict == L.FAILS and none.figures["ci_low"] == 0
    assert L.judge_position_bias(0, 0).verdict == L.NOT_MEASURED
    low, high = L.wilson_interval(24, 24)
    assert high == 1 and 0.8 < low < 0.9  # 100% of 24 still has a lower bound below 1


def test_c14_and_m4():
    assert L.contamination_inflates(0.3, 0.8, 10, 0).verdict == L.HOLDS
    assert "detector" in L.contamination_inflates(0.3, 0.8, 0, 0).reason
    assert "rose only" in L.contamination_inflates(0.3, 0.35, 10, 0).reason
    assert L.quality_filter_helps(2.1, 2.3).verdict == L.HOLDS
    assert L.quality_filter_helps(2.4, 2.3).verdict == L.FAILS
    assert L.quality_filter_helps(math.nan, 2.3).verdict == L.NOT_MEASURED


def test_verdict_json_round_trip_carries_the_claim_text():
    v = L.judge_position_bias(20, 24)
    v.seconds = 1.5
    d = v.to_json()
    assert d["id"] == "C13" and d["statement"] == L.CLAIMS["C13"].statement and d["seconds"] == 1.5
    back = L.Verdict.from_json(d)
    assert back.verdict == v.verdict and back.figure == v.figure and back.claim == "C13"


def test_c6_reports_losses_and_c7_lets_the_loss_decide_a_tied_score():
    v = L.low_rank_suffices({1: 0.88, 8: 0.62, 64: 0.5}, losses={1: 1.80, 8: 1.73})
    assert v.verdict == L.HOLDS and "r=8: 1.730" in v.figure and v.figures["val_loss"][1] == 1.80
    assert L.low_rank_suffices({1: 0.9, 8: math.nan}).verdict == L.NOT_MEASURED
    tied = L.qv_beats_q(1.0, 1.0, loss_qv=1.69, loss_q=2.22, params_qv=76_800, params_q=73_728)
    assert tied.verdict == L.HOLDS and "76,800 vs 73,728" in tied.figure
    worse = L.qv_beats_q(1.0, 1.0, loss_qv=2.3, loss_q=2.2)
    assert worse.verdict == L.FAILS and "held-out loss at least as low" in worse.reason
    lower_score = L.qv_beats_q(0.5, 0.75, loss_qv=1.9, loss_q=2.2)
    assert lower_score.verdict == L.FAILS and "scored higher" in lower_score.reason


def test_lora_verdicts_from_run_summaries():
    from labs.finetune import lora

    runs = [{"r": 1, "task_score_after": 0.875, "final_val_loss": 1.8}, {"r": 8, "task_score_after": 0.625,
                                                                          "final_val_loss": 1.7}]
    assert lora.rank_verdict(runs).verdict == L.HOLDS
    assert lora.rank_verdict(runs[:1]).verdict == L.NOT_MEASURED
    q = {"task_score_after": 0.0, "final_val_loss": 2.2, "trainable_params": 73_728}
    qv = {"task_score_after": 0.25, "final_val_loss": 1.7, "trainable_params": 76_800}
    assert lora.qv_verdict(qv, q).verdict == L.HOLDS
    assert lora.qv_verdict(None, q).verdict == L.NOT_MEASURED


def test_c14_needs_both_scores_and_a_clean_detector():
    assert L.contamination_inflates(float("nan"), 0.8, 10, 0).verdict == L.NOT_MEASURED
    v = L.contamination_inflates(0.25, 0.6, 48, 1)  # the score jumps, but the clean run was flagged too
    assert v.verdict == L.FAILS and "detector" in v.reason
    v = L.contamination_inflates(0.25, 0.34, 48, 0)  # a 9-point rise is under the 10-point margin
    assert v.verdict == L.FAILS and "rose only" in v.reason
    v = L.contamination_inflates(0.25, 0.5625, 48, 0)
    assert v.verdict == L.HOLDS and math.isclose(v.figures["jump"], 0.3125)


def test_c14_verdict_from_experiment_figures():
    from labs.evaluation import contamination

    r = contamination.ContaminationResult(48, 48, 0.25, 0.25, 0.5625, 48, 0, 48, 10,
                                          {"clean": 30.0, "contaminated": 27.0}, [])
    v = contamination.contamination_verdict(r)
    assert v.verdict == L.HOLDS and v.figures["base"] == 0.25 and v.figures["steps"] == 48
    r.contaminated = 0.27
    assert contamination.contamination_verdict(r).verdict == L.FAILS


def test_c10_from_cost_rows_and_c12_from_layer_shapes():
    from labs.attention import cost, memory

    rows = [{"variant": v, "T": t, "prefill_ms": (t / 1000) ** e} for v, e in (("softmax", 2.0), ("linear", 1.0))
            for t in (1024, 2048, 4096, 8192)]
    v = cost.slopes_verdict(rows)
    assert v.verdict == L.HOLDS and abs(v.figures["softmax_slope"] - 2) < 1e-9 and v.figures["lengths"][-1] == 8192
    cubic = [dict(r, prefill_ms=(r["T"] / 1000) ** 3) if r["variant"] == "softmax" else r for r in rows]
    assert cost.slopes_verdict(cubic).verdict == L.FAILS
    assert cost.slopes_verdict([r for r in rows if r["variant"] == "softmax"]).verdict == L.NOT_MEASURED
    c12 = memory.hybrid_verdict(1_000_000)
    assert c12.verdict == L.HOLDS and 0.74 < c12.figures["kimi_linear_20_7_reduction"] < 0.75


def test_bench_lessons_prints_the_readme_table_from_a_results_file(tmp_path, capsys):
    from bench import bench_lessons

    results = [L.Verdict("C12", L.HOLDS, "75.0% less KV cache", {"kv_reduction": 0.75}, seconds=0.01).to_json(),
               L.Verdict("C9", L.FAILS, "RAG 20% vs no-RAG 17%", {}, "the 95% interval of the difference reaches 0",
                         54.9).to_json(),
               L.not_measured("C14", "stopped at the time budget of 120 s before it finished").to_json()]
    path = tmp_path / "lessons.json"
    path.write_text(json.dumps(results))
    assert bench_lessons.main(["--table", "--out", str(path)]) == []
    rows = {line.split(" | ")[0].lstrip("| "): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == set(L.CLAIMS)  # one row per claim, measured or not
    assert "| holds | 75.0% less KV cache | 0.0 |" in rows["C12"]
    assert "does not hold | RAG 20% vs no-RAG 17%. the 95% interval of the difference reaches 0 | 54.9" in rows["C9"]
    assert "not measured yet | stopped at the time budget" in rows["C14"]
    assert "no run in the results file" in rows["C1"]


def test_bench_lessons_runs_each_claim_in_a_process_of_its_own(tmp_path, monkeypatch):
    """The full run starts one process per claim (nothing an earlier claim left in a process can slow a later one);
    --alone adds a second process's seconds and the ratio; a process that dies is a reason, never a verdict."""
    import sys

    from bench import bench_lessons

    out = tmp_path / "lessons.json"
    entries = {e["id"]: e for e in bench_lessons.main(["--only", "C1", "C12", "--alone", "--out", str(out)])}
    assert entries["C12"]["verdict"] == L.HOLDS and entries["C1"]["verdict"] == L.FAILS  # C1 cannot hold (README)
    assert all(e["seconds_alone"] is not None and "measured_at" in e for e in entries.values())
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'MemoryError: out of memory' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    died = bench_lessons.in_own_process("C12", 5)
    assert died["verdict"] == L.NOT_MEASURED and "code 3: MemoryError: out of memory" in died["reason"]


def test_bench_lessons_times_a_claims_setup_apart_from_the_claim(monkeypatch):
    """What the page has done before the button (C9: the corpus embedded by Build) runs before the claim's timer,
    as the chat model's load does, and is reported as setup_seconds."""
    import time

    from bench import bench_lessons

    order = []
    monkeypatch.setitem(bench_lessons.SETUP, "C12", lambda: (order.append("setup"), time.sleep(0.3)))
    real = bench_lessons.RUNNERS["C12"]
    monkeypatch.setitem(bench_lessons.RUNNERS, "C12", lambda deadline: (order.append("claim"), real(deadline))[1])
    verdict = bench_lessons.run_claim("C12", 30)
    assert order == ["setup", "claim"] and verdict.verdict == L.HOLDS
    assert verdict.figures["setup_seconds"] >= 0.3 and verdict.seconds < 0.3
