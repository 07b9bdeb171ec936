"""Invariants of the mixture arithmetic, the weighted sampler, the corpora, and a tiny training run."""
from __future__ import annotations

import math

import pytest
import torch

from labs.mixtures import calculator, filtering, next_token, pretrain
from labs.data import corpora


def test_gpt3_epochs_match_published_where_the_table_is_consistent():
    rows, _ = calculator.mixture_table(list(calculator.GPT3.sources), calculator.GPT3.budget_b)
    by = {r["source"]: r for r in rows}
    # Rows whose printed weight, size and epochs agree (weights renormalised from 101% to 100%).
    for name in ("Common Crawl (filtered)", "Books2", "Books1"):
        assert by[name]["epochs"] == pytest.approx(by[name]["published epochs"], rel=0.06)
    # WebText2 is the known inconsistent row: 22% of 300B over 19B is ~3.4 epochs, the paper prints 2.9,
    # which implies a weight of ~18%.
    assert calculator.epochs_differ(by["WebText2"])
    assert by["WebText2"]["implied weight"] == pytest.approx(0.29 * 19 / 3, rel=1e-6) or \
        by["WebText2"]["implied weight"] == pytest.approx(2.9 * 19 / 300)
    assert sum(r["tokens drawn (B)"] for r in rows) == pytest.approx(300)


def test_llama_derived_sizes_reproduce_epochs_and_sum_near_1_4T():
    rows, _ = calculator.mixture_table(list(calculator.LLAMA1.sources), calculator.LLAMA1.budget_b)
    for r in rows:
        assert r["epochs"] == pytest.approx(r["published epochs"], rel=0.01)
    assert 1150 < sum(s.tokens_b for s in calculator.LLAMA1.sources) < 1450


def test_weights_are_normalised_with_a_message():
    w, msg = calculator.normalise_weights([1, 1, 2])
    assert w == pytest.approx([0.25, 0.25, 0.5]) and "normal" in msg.lower() or "divided" in msg
    w, msg = calculator.normalise_weights([60, 40])
    assert msg == "" and sum(w) == pytest.approx(1)


@pytest.mark.parametrize("weights", [[0, 0], [-1, 2], [float("nan"), 1]])
def test_bad_weights_raise_readable_errors(weights):
    with pytest.raises(ValueError):
        calculator.normalise_weights(weights)


@pytest.mark.parametrize("size", [0, -5, float("nan")])
def test_bad_sizes_name_the_row(size):
    with pytest.raises(ValueError, match="web"):
        calculator.mixture_table([calculator.Source("web", size, 100)], 10)


def test_repeated_sources_are_flagged():
    rows, messages = calculator.mixture_table([calculator.Source("big", 1000, 50), calculator.Source("tiny", 1, 50)],
                                              100, 4)
    assert [r["repeated"] for r in rows] == [False, True]
    assert any("tiny" in m for m in messages)


def test_sampling_by_weights_matches_the_weights():
    gen = torch.Generator().manual_seed(0)
    weights = [0.6, 0.3, 0.1]
    counts = torch.bincount(pretrain.sample_domains(weights, 200_000, gen), minlength=3).double() / 200_000
    assert counts.tolist() == pytest.approx(weights, abs=0.005)
    assert (pretrain.sample_domains([1, 0, 1], 10_000, gen) != 1).all()  # weight 0 is never drawn


def test_labels_are_inputs_shifted_by_one():
    inputs, labels = next_token.shift_for_next_token([5, 6, 7, 8])
    assert inputs == [5, 6, 7] and labels == [6, 7, 8]
    stream = torch.arange(100)
    x, y = pretrain.fixed_windows(stream, 4, 10)
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_next_token_rows_agree_with_the_models_own_loss(tiny):
    text = "Labels are the inputs shifted by one."
    rows = next_token.next_token_rows(tiny, text)
    ids = tiny.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(rows) == len(ids) - 1
    with torch.no_grad():
        hf = tiny.model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
    assert sum(r["loss"] for r in rows) / len(rows) == pytest.approx(hf, rel=1e-4)
    assert all(math.isclose(r["p(label)"], math.exp(-r["loss"])) for r in rows)


def test_quality_filter_removes_duplicates_and_junk():
    good = "This is a perfectly reasonable paragraph of prose that says something about data mixtures."
    docs = [good, " ".join(good.split()), "short", "#$%^&*(){}[]<>" * 10, "same line\n" * 10, good + " More."]
    kept, stats = filtering.quality_filter(docs)
    assert kept == [good, good + " More."]
    assert (stats.duplicates, stats.too_short, stats.symbols, stats.repetitive) == (1, 1, 1, 1)
    assert 0 < stats.removed_fraction < 1


def test_uploads_bad_input():
    with pytest.raises(ValueError, match="empty"):
        corpora.parse_upload("a.txt", b"  \n ")
    with pytest.raises(ValueError, match="binary"):
        corpora.parse_upload("a.txt", b"abc\x00def")
    with pytest.raises(ValueError, match="MB"):
        corpora.parse_upload("a.txt", b"x" * 2000, max_bytes=1000)
    with pytest.raises(ValueError, match="text"):
        corpora.parse_upload("a.jsonl", b'{"content": "x"}\nnot json\n')
    docs = corpora.parse_upload("a.jsonl", b'{"text": "hello"}\nbad\n{"text": "world"}\n')
    assert docs == ["hello", "world"]
    assert len(corpora.parse_upload("a.txt", ("para one\n\n" * 500).encode())) > 1


def test_builtin_domains_split_by_document():
    for d in corpora.BUILTIN_DOMAINS:
        train, val = corpora.split(corpora.builtin_documents(d))
        assert train and val and not set(train) & set(val)


def test_config_validation_says_how_to_fix():
    with pytest.raises(ValueError, match="one weight per domain"):
        pretrain.MixtureRunConfig(weights=(1.0,))
    with pytest.raises(ValueError, match="not in the mixture"):
        pretrain.MixtureRunConfig(repeat_domain="poetry")


class _Ctx:
    def __init__(self, config):
        self.config, self.rows, self.notes = config, [], []

    def note(self, text):
        self.notes.append(text)

    def set_total(self, n):
        pass

    def log(self, **row):
        self.rows.append(row)

    def check_stop(self):
        pass

    def save_json(self, name, obj):
        pass


def test_a_tiny_run_lowers_every_domains_loss_and_weight_zero_learns_least():
    cfg = pretrain.MixtureRunConfig(weights=(1.0, 1.0, 0.0), steps=60, size="tiny (2 x 64, ~20 ms/step)",
                                    block_size=32, batch_size=8, eval_every=30, sample_every=60, lr=1e-2, warmup=5)
    ctx = _Ctx(cfg)
    summary = pretrain.train_mixture(ctx, eval_windows=8, sample_bytes=16)
    first, last = ctx.rows[0], ctx.rows[-1]
    for d in ("code", "prose"):
        assert last[f"val_{d}"] < first[f"val_{d}"] - 1.0
    gains = {d: first[f"val_{d}"] - last[f"val_{d}"] for d in cfg.domains}
    assert gains["arithmetic"] < max(gains["code"], gains["prose"])
    assert last["epochs_arithmetic"] == 0
    assert any("step 60 · code" in n for n in ctx.notes)
    assert math.isfinite(summary["final_loss"])
