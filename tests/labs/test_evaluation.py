"""Invariants of the evaluation engine: log-likelihood = sum of token log-probs, the shared-prefix batch equals the
one-pass-per-choice loop, acc vs acc_norm, the stderr formula, the judge's order-swap logic, diversity, contamination."""
import math

import pytest
import torch

from labs.evaluation import benchmark, charts, contamination, diversity, generative, judging, scoring
from labs.runs import jobs
from labs.data import benchmarks as bm
from labs.data.benchmarks import MCItem


def test_acc_norm_differs_from_acc_exactly_when_length_changes_the_argmax():
    # 'Paris' (5 chars) at -4.0 beats the 20-char choice on raw loglik, loses per character (-0.8 vs -0.3).
    pred, pred_norm = scoring.predictions([-4.0, -6.0], ["Paris", "the city of Lyon, yes"[:20]])
    assert (pred, pred_norm) == (0, 1)
    # Same lengths: dividing by a constant never moves the argmax.
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        ll = (-torch.rand(4, generator=gen) * 10).tolist()
        assert scoring.predictions(ll, ["A", "B", "C", "D"])[0] == scoring.predictions(ll, ["A", "B", "C", "D"])[1]
    # Different lengths that keep the order: still equal.
    assert scoring.predictions([-1.0, -8.0], ["abcd", "ab"]) == (0, 0)


def test_mean_stderr_is_sample_std_over_sqrt_n():
    # [1,0,1,1]: mean .75, sample variance (3*.0625 + .5625)/3 = .25, se = sqrt(.25/4) = .25
    assert scoring.mean_stderr([1, 0, 1, 1]) == pytest.approx(0.25)
    p, n = 0.6, 50
    scores = [1.0] * 30 + [0.0] * 20
    assert scoring.mean_stderr(scores) == pytest.approx(math.sqrt(p * (1 - p) / (n - 1)))
    assert math.isnan(scoring.mean_stderr([1.0]))


def test_encode_pair_moves_trailing_spaces_and_matches_whole_tokenization(tiny):
    tok = tiny.tokenizer
    assert scoring.encode_pair(tok, "Answer: ", "Paris") == scoring.encode_pair(tok, "Answer:", " Paris")
    ctx, cont = scoring.encode_pair(tok, "The capital of France is", " Paris")
    assert ctx + cont == tok("The capital of France is Paris")["input_ids"]
    ctx, cont = scoring.encode_pair(tok, "", "Paris")  # nothing to condition on: an end-of-text token is the context
    assert len(ctx) == 1 and cont


@pytest.mark.parametrize("fixture", ["tiny", "tiny_gemma"])
def test_loglik_of_a_choice_equals_the_manual_sum_of_token_logprobs(fixture, request):
    lm = request.getfixturevalue(fixture)
    context = "Question: What is the capital of France?\nAnswer:"
    choices = [" Paris", " the city of Lyon", " Rome", " a very long answer that goes on"]
    pairs = [scoring.encode_pair(lm.tokenizer, context, c) for c in choices]
    fast = scoring.score_choices(lm.model, pairs[0][0], [p[1] for p in pairs], lm.tokenizer.pad_token_id or 0)
    for (ctx, cont), (fast_ll, fast_greedy) in zip(pairs, fast):
        ids = torch.tensor([ctx + cont])
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(input_ids=ids).logits[0].float(), dim=-1)
        manual = sum(float(logp[len(ctx) - 1 + j, tok]) for j, tok in enumerate(cont))
        naive_ll, naive_greedy = scoring.loglikelihood_naive(lm.model, ctx, cont)
        assert naive_ll == pytest.approx(manual, abs=1e-4)
        assert fast_ll == pytest.approx(manual, abs=1e-4)  # shared prefix + right-padded batch changes nothing
        assert fast_greedy == naive_greedy


def test_score_item_uses_mmlu_prompt_and_letters(tiny):
    items, dev = bm.load_bundled("test"), bm.load_bundled("dev")
    shots = scoring.pick_shots(items[0], dev, 2)
    assert [s.subject for s in shots] == [items[0].subject] * 2 and items[0] not in shots
    r = scoring.score_item(tiny.model, tiny.tokenizer, items[0], shots, "letters")
    assert r.prompt.startswith("The following are multiple choice questions (with answers) about basic science.\n\n")
    assert r.prompt.endswith("\nD. Helium\nAnswer:") and r.prompt.count("Answer:") == 3
    assert r.choices == ["A", "B", "C", "D"] and r.pred == r.pred_norm  # one-letter choices: acc_norm == acc
    cloze = scoring.score_item(tiny.model, tiny.tokenizer, items[0], (), "text")
    assert cloze.choices == list(items[0].choices) and "A." not in cloze.prompt


def test_batched_scoring_equals_one_item_at_a_time(tiny):
    """score_items (several contexts per pass; longer choices fall back to score_item) gives score_item's numbers."""
    items = bm.load_bundled("test")[:10]
    for choice_format in ("letters", "text"):
        want = [scoring.score_item(tiny.model, tiny.tokenizer, i, (), choice_format) for i in items]
        got = scoring.score_items(tiny.model, tiny.tokenizer, items, choice_format, batch_size=4)
        assert [g.id for g in got] == [w.id for w in want] and [g.prompt for g in got] == [w.prompt for w in want]
        assert [g.pred for g in got] == [w.pred for w in want] and [g.greedy for g in got] == [w.greedy for w in want]
        assert all(abs(a - b) < 1e-4 for g, w in zip(got, want) for a, b in zip(g.loglik, w.loglik))


def test_combine_orders_counts_disagreement_as_tie():
    assert judging.combine_orders(1, 2) == "A"  # A first and chosen; B first, slot 2 (A) chosen
    assert judging.combine_orders(2, 1) == "B"
    assert judging.combine_orders(1, 1) == "tie"  # always the first slot: pure position bias
    assert judging.combine_orders(2, 2) == "tie"


def test_judge_bias_rates_on_constructed_records():
    short, long_ = "x", "a much longer answer"
    records = [
        {"pick_ab": 1, "pick_ba": 1, "verdict": "tie", "a": short, "b": long_, "gold": "A"},  # position-biased
        {"pick_ab": 2, "pick_ba": 1, "verdict": "B", "a": short, "b": long_, "gold": "A"},  # longer won, wrong
        {"pick_ab": 1, "pick_ba": 2, "verdict": "A", "a": short, "b": long_, "gold": "A"},  # shorter won, right
        {"pick_ab": 1, "pick_ba": 2, "verdict": "A", "a": long_, "b": short, "gold": "A"},  # longer won, right
    ]
    rates = judging.judge_biases(records)
    assert rates["position_bias"] == 0.25 and rates["ties"] == 0.25
    assert rates["first_slot"] == 5 / 8
    assert rates["length_bias"] == pytest.approx(2 / 3)
    assert rates["accuracy"] == 0.5


def test_known_pairs_make_length_independent_of_correctness():
    pairs = judging.known_pairs(bm.load_bundled_generative())
    right_longer = [len(p[p["gold"].lower()]) > len(p["b" if p["gold"] == "A" else "a"]) for p in pairs]
    assert abs(sum(right_longer) - len(pairs) / 2) <= 1
    assert 0 < sum(p["gold"] == "A" for p in pairs) < len(pairs)


def test_judge_runs_both_orders(tiny):
    out = judging.judge_pair(tiny, "What is 2+2?", "4", "5")
    assert out["pick_ab"] in (1, 2) and out["pick_ba"] in (1, 2) and 0 <= out["p1_ab"] <= 1
    assert out["verdict"] == judging.combine_orders(out["pick_ab"], out["pick_ba"])


def test_generative_scoring():
    row = {"answer": "Paris", "pattern": ""}
    assert generative.score_generation("The Paris.", row) == {"prediction": "The Paris.", "exact_match": 1.0,
                                                              "contains": 1.0, "regex": 1.0}
    s = generative.score_generation("I think it is Paris, France", row)
    assert (s["exact_match"], s["contains"]) == (0.0, 1.0)
    assert generative.score_generation("Comparison", {"answer": "Paris", "pattern": ""})["contains"] == 0.0
    assert generative.score_generation("the answer is paris", row, r"answer is (\w+)")["exact_match"] == 1.0
    assert generative.regex_match("eight legs", "8", r"\b(8|eight)\b")


def test_diversity_measures():
    same = ["the sea is blue and calm"] * 4
    assert diversity.distinct_n(same, 1) == pytest.approx(6 / 24) and diversity.self_overlap(same) == 1.0
    varied = ["waves crash loudly", "fish swim deep below", "salt wind blows north"]
    assert diversity.distinct_n(varied, 2) == 1.0 and diversity.self_overlap(varied) == 0.0
    assert diversity.self_similarity(torch.ones(3, 4)) == pytest.approx(1.0)
    assert diversity.self_similarity(torch.eye(3)) == pytest.approx(0.0)


def test_contamination_flags_only_the_planted_item():
    items = [("q1", "What is the capital of France? Paris is the answer here"),
             ("q2", "Which planet is known as the red planet in our solar system? Mars"),
             ("q3", "Too short")]
    corpus = {"train.txt": "blah blah which planet is known as the red planet in our solar system mars blah"}
    report = contamination.contamination(items, corpus, n=8)
    flagged = {r["id"] for r in report["rows"] if r["flagged"]}
    assert flagged == {"q2"} and report["too_short"] == 1 and report["checked"] == 2
    with pytest.raises(ValueError):
        contamination.contamination(items, corpus, n=2)


class FakeCtx:
    """Enough of labs.runs.jobs.RunContext to run a step function inline; Stop after `stop_after` logged items."""

    def __init__(self, config, artifacts, stop_after=None):
        self.config, self.artifacts, self.stop_after, self.metrics = config, artifacts, stop_after, []
        self.seed = 0

    def set_total(self, n):
        self.total = n

    def check_stop(self):
        if self.stop_after is not None and len(self.metrics) >= self.stop_after:
            raise jobs.Stopped()

    def log(self, **m):
        self.metrics.append(m)
        self.check_stop()

    def note(self, text):
        pass

    def save_json(self, name, obj):
        import json

        (self.artifacts / name).write_text(json.dumps(obj, default=str))


def test_benchmark_run_logs_running_accuracy_and_keeps_partial_results_on_stop(tiny, tmp_path):
    items = [MCItem(f"t{i}", "demo", f"Question {i}?", ("yes", "no", "maybe", "never"), i % 4) for i in range(6)]
    dev = [MCItem(f"d{i}", "demo", f"Dev question {i}?", ("yes", "no", "maybe", "never"), i % 4) for i in range(2)]
    cfg = benchmark.BenchmarkConfig(choice_format="text", k_shot=1)
    done = FakeCtx(cfg, tmp_path)
    summary = benchmark.run_benchmark(done, tiny, items, dev)
    saved = benchmark.load_results(tmp_path)
    assert saved["complete"] and summary["n"] == 6 and len(done.metrics) == 6
    for sample in saved["samples"]:  # the one solved example is a dev question, never a scored one
        assert "Dev question 0?" in sample.prompt and sample.prompt.count("Question ") == 1
    assert done.metrics[-1]["acc"] == pytest.approx(saved["summary"]["overall"]["acc"])
    harness = saved["harness"]["results"]
    assert {"acc,none", "acc_stderr,none", "acc_norm,none", "acc_norm_stderr,none"} <= set(harness["mini_mmlu"])
    assert "mini_mmlu_demo" in harness

    stopped_dir = tmp_path / "stopped"
    stopped_dir.mkdir()
    with pytest.raises(jobs.Stopped):
        benchmark.run_benchmark(FakeCtx(cfg, stopped_dir, stop_after=2), tiny, items, dev)
    partial = benchmark.load_results(stopped_dir)
    assert not partial["complete"] and len(partial["samples"]) == 2 and partial["total"] == 6


def test_config_validation_says_how_to_fix():
    with pytest.raises(ValueError, match="k_shot"):
        benchmark.BenchmarkConfig(k_shot=50)
    with pytest.raises(ValueError, match="choice_format"):
        benchmark.BenchmarkConfig(choice_format="words")
    with pytest.raises(ValueError, match="regex"):
        generative.GenerativeConfig(extract_regex="(")
    with pytest.raises(ValueError, match="temperature"):
        diversity.DiversityConfig(temperatures=(0.0,))


def test_limit_takes_items_from_every_subject():
    items = bm.load_bundled("test")
    first = benchmark.interleave_subjects(items)[:12]
    assert len({i.subject for i in first}) == 6
    assert sorted(i.id for i in benchmark.interleave_subjects(items)) == sorted(i.id for i in items)


def test_diversity_run_saves_one_row_per_temperature(tiny, tmp_path):
    cfg = diversity.DiversityConfig(temperatures=(0.2, 1.5), samples=3, max_new_tokens=6)
    ctx = FakeCtx(cfg, tmp_path)
    diversity.run_diversity(ctx, tiny, embed=lambda texts: torch.randn(len(texts), 8))
    import json

    saved = json.loads((tmp_path / "diversity.json").read_text())
    assert [r["temperature"] for r in saved["table"]] == [0.2, 1.5]
    assert all(len(v) == 3 for v in saved["samples"].values())
    assert "distinct_2" in ctx.metrics[-1] and "self_similarity" in ctx.metrics[-1]


def test_k_shot_examples_never_come_from_the_scored_items(tiny, tmp_path):
    items = [MCItem(f"t{i}", "demo", f"Question {i}?", ("yes", "no", "maybe", "never"), i % 4) for i in range(3)]
    with pytest.raises(ValueError, match="separate dev set.*upload a dev file"):
        benchmark.run_benchmark(FakeCtx(benchmark.BenchmarkConfig(choice_format="text", k_shot=2), tmp_path), tiny,
                                items)
    # a dev file that repeats a scored question: that question is never shown as a solved example
    pool = scoring.few_shot_pool(items, [items[0], MCItem("d0", "demo", "Other?", ("a", "b", "c", "d"), 2)], k=1)
    assert [p.id for p in pool] == ["d0"]
    assert scoring.few_shot_pool(items, [], k=0) == []  # zero-shot needs no dev set


def test_acc_norm_is_offered_only_where_it_can_differ(tiny, tmp_path):
    letters = [MCItem(f"t{i}", "demo", f"Question {i}?", ("yes", "no", "maybe", "never"), i % 4) for i in range(4)]
    assert not scoring.acc_norm_can_differ([scoring.choice_strings(i, "letters") for i in letters])
    assert scoring.acc_norm_can_differ([scoring.choice_strings(i, "text") for i in letters])  # 'yes' vs 'maybe'
    same = [MCItem("s", "demo", "Q?", ("cat", "dog", "cow", "pig"), 0)]
    assert not scoring.acc_norm_can_differ([scoring.choice_strings(i, "text") for i in same])
    ctx = FakeCtx(benchmark.BenchmarkConfig(choice_format="letters"), tmp_path)
    benchmark.run_benchmark(ctx, tiny, letters)
    saved = benchmark.load_results(tmp_path)
    assert "acc_norm" not in ctx.metrics[-1] and not saved["summary"]["acc_norm_differs"]
    assert "acc_norm,none" not in saved["harness"]["results"]["mini_mmlu"]


def _result(pred, answer, choices=("A", "B", "C", "D")):
    return scoring.ItemResult("i", "s", "p", list(choices), list(choices), answer, [0.0] * 4, [False] * 4, pred, pred)


def test_answer_distribution_points_out_a_model_that_always_says_a():
    gold = [0, 1, 2, 3, 0, 1, 2, 3]
    always_a = [_result(0, g) for g in gold]
    dist = scoring.answer_distribution(always_a)
    assert dist["predicted"] == [1.0, 0, 0, 0] and dist["gold"] == [0.25] * 4 and dist["chance"] == 0.25
    assert dist["same_answer"] and dist["top"] == "A" and dist["top_gold_share"] == 0.25
    acc = sum(r.acc for r in always_a) / len(always_a)
    assert acc == dist["top_gold_share"]  # its accuracy is exactly the share of A in the answer key
    assert "answered A always" in scoring.same_answer_text(dist) and "25%" in scoring.same_answer_text(dist)
    varied = scoring.answer_distribution([_result(g, g) for g in gold])
    assert not varied["same_answer"] and scoring.same_answer_text(varied) == "" and varied["predicted"] == [0.25] * 4
    assert charts.answer_chart(dist).data[0].y == (1.0, 0, 0, 0)


def test_contamination_experiment_runs_on_a_tiny_model(tiny, tmp_path):
    """The C14 experiment end to end on a tiny random model: both fine-tunes run with equal steps, every score is a
    share of the items, and the detector flags the contaminated training text but not the clean one (the score
    jump itself needs the real model: bench_lessons --only C14)."""
    from labs.finetune import sft

    class Ctx:
        config = contamination.ContaminationConfig(n_items=6, epochs=1, batch_size=4, lora_layers=1)
        run_id, artifacts, seed = "test-c14", tmp_path, 0
        logged: list = []
        total = None

        def set_total(self, n):
            self.total = n

        def log(self, **m):
            self.logged.append(m)

        def note(self, text):
            pass

        def check_stop(self):
            pass

        def should_stop(self):
            return False

        def save_json(self, name, obj):
            import json

            (tmp_path / name).write_text(json.dumps(obj))

    ctx = Ctx()
    r = contamination.run_contamination(ctx, tiny)
    assert r.n_items == 6 and r.steps == 2 and set(r.train_seconds) == {"clean", "contaminated"}
    assert all(0 <= s <= 1 for s in (r.base, r.clean, r.contaminated))
    assert r.flagged_contaminated == r.checked == 6 and r.flagged_clean == 0
    assert (tmp_path / "contamination.json").exists() and (tmp_path / "clean").is_dir()
    assert not any(k.startswith(ctx.run_id) for k in sft._TUNED)  # the tuned copies are not kept
    assert [m["step"] for m in ctx.logged] == [0, 1, 2] and ctx.total == 2
