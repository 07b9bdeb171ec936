"""The near-duplicate filter, the filter against the web domain's labels, and the M4 comparison (equal steps)."""
from __future__ import annotations

import math

import pytest
import torch

from labs.runs import lessons
from labs.mixtures import comparison, filtering, pretrain
from labs.data import corpora
from tests.labs.test_mixtures import _Ctx

PAGE = ("The quick brown fox jumps over the lazy dog while the data pipeline removes boilerplate, duplicates and "
        "junk from a web crawl before training.")


@pytest.mark.parametrize("copy", [
    "2023-05-14 09:12\n" + PAGE,  # a date stamp
    PAGE + "\n?utm_source=feed&utm_id=48213",  # a tracking id
    PAGE.upper(),  # another case
    PAGE.replace(", ", " ,  "),  # punctuation and whitespace moved
])
def test_near_duplicates_share_a_key_and_are_dropped(copy):
    assert filtering.near_duplicate_key(copy) == filtering.near_duplicate_key(PAGE)
    kept, stats = filtering.quality_filter([PAGE, copy])
    assert kept == [PAGE] and stats.near_duplicates + stats.duplicates == 1


def test_distinct_documents_are_kept():
    other = PAGE.replace("lazy dog", "sleepy cat")
    kept, stats = filtering.quality_filter([PAGE, other, PAGE + " And one more sentence."])
    assert len(kept) == 3 and stats.near_duplicates == 0
    # symbol junk has an empty key: two of them are symbol-heavy, not copies of each other
    assert filtering.filter_reasons(["#$%^&*(){}" * 12, "@@!!<>[]{}" * 12]) == ["symbol-heavy", "symbol-heavy"]


def test_filter_against_the_web_labels():
    rows, scores = filtering.filter_vs_labels(list(corpora.web_pages()))
    by = {r["kind"]: r for r in rows}
    assert set(by) == set(corpora.WEB_KINDS)
    assert scores["precision"] > 0.95 and scores["recall"] > 0.95  # measured: 99.8% and 100%
    assert by["clean"]["kept"] > 0.95 * by["clean"]["documents"]
    assert by["near-duplicate"]["near-duplicate"] > 0 and by["boilerplate"]["repetitive"] > 0
    assert by["junk"]["symbol-heavy"] > 0 and by["junk"]["too short"] > 0
    report = {r["domain"]: r for r in filtering.filter_report({"web": corpora.builtin_documents("web")})}
    assert report["web"]["near-duplicates"] == sum(r["near-duplicate"] for r in rows)


def test_a_tiny_comparison_trains_both_arms_for_equal_steps():
    cfg = comparison.QualityComparisonConfig(steps=8, size="tiny (2 x 64, ~20 ms/step)", batch_size=4, block_size=32,
                                             eval_every=4, eval_windows=4, warmup=2)
    ctx = _Ctx(cfg)
    out = comparison.run_quality_comparison(ctx)
    evals = [r for r in ctx.rows if "val_filtered" in r]
    assert [r["step"] for r in evals] == [0, 4, 8]
    assert evals[0]["val_filtered"] == evals[0]["val_unfiltered"]  # the same initial weights, the same text
    arms = {f: pretrain.prepare_domains(cfg.run_config(f))["web"] for f in (False, True)}
    assert torch.equal(arms[False].val, arms[True].val)  # scored on the same clean bytes
    assert all("loss_filtered" in r and "loss_unfiltered" in r for r in ctx.rows if r["step"] > 0)
    assert out["steps"] == 8 and out["seconds"] > 0
    assert math.isfinite(out["val_filtered"]) and math.isfinite(out["val_unfiltered"])
    assert out["bytes"]["filtered"] < 0.6 * out["bytes"]["unfiltered"]  # the filter removed most of the noise
    verdict = comparison.quality_verdict(out)
    assert verdict.verdict in (lessons.HOLDS, lessons.FAILS)  # 8 steps: either way, computed from the run
    assert verdict.figures["steps"] == 8 and 0 < verdict.figures["filter_recall"] <= 1


def test_no_result_is_not_measured_and_bad_settings_say_how_to_fix():
    assert comparison.quality_verdict(None).verdict == lessons.NOT_MEASURED
    assert comparison.quality_verdict({"val_filtered": 2.0}).verdict == lessons.NOT_MEASURED
    with pytest.raises(ValueError, match="built-in domain"):
        comparison.QualityComparisonConfig(domain="my_upload")
    with pytest.raises(ValueError):
        comparison.QualityComparisonConfig(steps=0)
