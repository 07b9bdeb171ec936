"""Invariants of the LoRA lab: counts match PEFT, B = 0 is the base model, merging changes nothing,
the subspace similarity of Hu et al. 2021 (Section 7.2) behaves as defined."""
from __future__ import annotations

import dataclasses
import functools
import math

import pytest
import torch

from labs.runs import jobs
from labs.training import loop as training
from labs.finetune import lora


def _tokens(lm, n=2, t=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(10, 1000, (n, t), generator=g)


@pytest.mark.parametrize("targets,r,last,dora", [
    (("q_proj", "v_proj"), 4, 0, False),
    (("k_proj",), 2, 1, False),
    (lora.ALL_TARGETS, 3, 0, False),
    (("o_proj", "down_proj"), 8, 2, True),
])
def test_parameter_formula_matches_peft(tiny, targets, r, last, dora):
    cfg = lora.LoraRunConfig(r=r, targets=targets, last_layers=last, use_dora=dora, init="default")
    model = lora.lora_model(tiny, cfg)
    peft_trainable, _ = model.get_nb_trainable_parameters()
    ours = lora.lora_parameter_count(lora.architecture_of(tiny.model), targets, r, layers=last, use_dora=dora)
    assert ours.lora_params == peft_trainable


def test_b_zero_at_init_equals_base(tiny):
    x = _tokens(tiny)
    with torch.no_grad():
        base = tiny.model(input_ids=x).logits
        for init in ("gaussian", "default"):
            model = lora.lora_model(tiny, lora.LoraRunConfig(r=8, init=init, last_layers=0)).eval()
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    assert torch.count_nonzero(p) == 0
            assert torch.allclose(model(input_ids=x).logits, base, atol=1e-6)


def test_merged_equals_unmerged_and_adapter_matters(tiny):
    model = lora.random_adapter(tiny, r=4, targets=("q_proj", "v_proj", "down_proj"))
    result = lora.merge_check(tiny, model, ["Hello there", "What is 2 + 2?"], new_tokens=4)
    assert result["adapter_effect"] > 1e-3  # the adapter really changes the logits...
    assert result["max_abs_diff"] < 1e-4  # ...and merging W0 + sBA gives the same logits
    assert result["same_text"]


def test_subspace_similarity_definition():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 64, generator=g, dtype=torch.double)
    assert lora.subspace_similarity(a, a, 8, 8) == pytest.approx(1.0, abs=1e-9)
    assert lora.subspace_similarity(a, a, 3, 8) == pytest.approx(1.0, abs=1e-9)  # a subspace of itself
    q = torch.linalg.qr(torch.randn(64, 16, generator=g, dtype=torch.double))[0].T  # 16 orthonormal rows
    assert lora.subspace_similarity(q[:8], q[8:], 8, 8) == pytest.approx(0.0, abs=1e-12)
    grid = lora.similarity_grid(a, torch.randn(16, 64, generator=g, dtype=torch.double))
    assert len(grid) == 8 and len(grid[0]) == 16
    assert all(0 <= v <= 1 + 1e-9 for row in grid for v in row)
    b = torch.randn(16, 64, generator=g)
    assert lora.similarity_grid(a, b)[2][5] == pytest.approx(lora.subspace_similarity(a, b, 3, 6), abs=1e-9)


def test_effective_rank():
    assert lora.effective_rank(torch.tensor([3.0, 0, 0])) == pytest.approx(1.0)
    assert lora.effective_rank(torch.ones(5)) == pytest.approx(5.0)
    assert lora.energy_rank(torch.tensor([10.0, 1, 0.1])) == 1
    assert lora.effective_rank(torch.zeros(3)) == 0.0


def test_gpt3_reduction_from_dimensions():
    fig = lora.gpt3_reduction()
    assert fig["lora_params"] == 96 * 2 * 4 * (12288 + 12288)  # 18.9M (paper Section 7.1: ~18M budget)
    assert 174e9 < fig["total_params"] < 176e9
    assert 8_000 < fig["reduction"] < 11_000  # the paper's "10,000 times"
    assert 30 < fig["adapter_fp16_mb"] < 40  # "350 GB -> 35 MB"


def test_real_architecture_counts(smol):
    arch = lora.model_architecture("smollm2-135m-instruct")
    assert arch.total_params == sum(p.numel() for p in smol.model.parameters())
    assert arch.layers == 30 and arch.matrices["q_proj"] == (576, 576) and arch.matrices["k_proj"] == (192, 576)


def test_bad_input_is_refused(tiny):
    arch = lora.architecture_of(tiny.model, "tiny")
    for targets, r in [((), 4), (("q_proj",), 0), (("q_proj",), 10_000), (("w_nope",), 4)]:
        with pytest.raises(ValueError):
            lora.lora_parameter_count(arch, targets, r)
    with pytest.raises(ValueError):
        lora.LoraRunConfig(targets=())
    with pytest.raises(ValueError):
        lora.LoraRunConfig(lr=float("nan"))
    with pytest.raises(ValueError):  # r above min(d, k) of the tiny model's k_proj (32)
        lora.lora_model(tiny, lora.LoraRunConfig(r=64, targets=("k_proj",)))


def test_w0_projection_of_its_own_directions():
    g = torch.Generator().manual_seed(1)
    w0 = torch.randn(32, 24, generator=g, dtype=torch.double)
    u, s, vh = torch.linalg.svd(w0, full_matrices=False)
    top = u[:, :2] @ torch.diag(s[:2]) @ vh[:2]
    row = lora.w0_projection(w0, top, r=2)
    assert row["||U^T W0 V^T||_F (ΔW directions)"] == pytest.approx(row["||U^T W0 V^T||_F (W0's top directions)"])
    assert row["amplification"] == pytest.approx(1.0)


def test_rank_for_budget_matches_paper_pattern():
    arch = lora.gpt_like(**lora.GPT3)
    budget = lora.lora_parameter_count(arch, ["q_proj"], 8).lora_params
    assert lora.rank_for_budget(arch, ["q_proj", "v_proj"], budget) == 4
    assert lora.rank_for_budget(arch, list(lora.ATTENTION_TARGETS), budget) == 2


def test_training_run_saves_an_adapter_we_can_analyse(tiny):
    cfg = lora.LoraRunConfig(r=4, steps=3, batch_size=2, n_train=8, n_eval=2, score_prompts=2, eval_every=3, max_len=48,
                             last_layers=0, tiny_models=True, lr=1e-2)
    run = jobs.wait(jobs.submit(cfg, functools.partial(lora.train_lora, lm=tiny)), timeout=120)
    assert run.status == jobs.DONE, run.reason
    assert [m["step"] for m in run.metrics][:2] == [0, 1]
    s = run.summary
    assert math.isfinite(s["final_val_loss"]) and s["trainable_params"] > 0
    assert 0 <= s["task_score_after"] <= 1
    deltas = lora.adapter_deltas(s["adapter"])
    assert {d.target for d in deltas} == {"q_proj", "v_proj"} and len(deltas) == 2 * tiny.model.config.num_hidden_layers
    assert deltas[0].scaling == pytest.approx(16 / 4)
    spectra = lora.delta_spectra(deltas)
    assert all(1 <= row["effective rank"] <= 4 + 1e-6 for row in spectra)  # trained: B ≠ 0, rank(BA) ≤ r
    rows = lora.w0_table(tiny, deltas[:2])
    assert rows[0]["amplification"] > 0
    again = jobs.submit(cfg, functools.partial(lora.train_lora, lm=tiny))
    assert jobs.get(again).replayed  # same config + seed -> stored result at once
    # B = 0 at the start: a second rank of the same sweep shares the untrained scores (computed once), and they
    # are what that run's own untrained model scores
    other = dataclasses.replace(cfg, r=2)
    other_run = jobs.wait(jobs.submit(other, functools.partial(lora.train_lora, lm=tiny)), timeout=120)
    assert other_run.metrics[0]["val_loss"] == run.metrics[0]["val_loss"]
    assert other_run.summary["task_score_before"] == s["task_score_before"]
    fresh = lora.lora_model(tiny, other)
    held = lora.encode_pairs(tiny, lora.task_pairs(cfg.task, cfg.n_train, cfg.n_eval, cfg.seed)[1], cfg.max_len)
    own = lora.held_out_scores(fresh, held, training.pad_id(tiny.tokenizer), "cpu")
    assert own["val_loss"] == pytest.approx(run.metrics[0]["val_loss"], abs=0.02)  # bf16 autocast on some CPUs


def test_tasks_have_disjoint_held_out_sets():
    for task in lora.TASKS:
        train, held = lora.task_pairs(task, 64, 16)
        assert len(train) == 64 and len(held) == 16
        assert not {str(p) for p, _ in train} & {str(p) for p, _ in held}
    assert lora.task_success("arithmetic", "", "17 + 25 = 42.", "17 + 25 = 42.")
    assert lora.task_success("tldr", [], "TL;DR: Paris.\n- It is the capital.", "")
    assert not lora.task_success("tldr", [], "Paris is the capital.", "")


def test_top_layer_runs_replay_the_frozen_blocks_and_score_as_the_plain_forward(tiny):
    """LoRA on the top layer only: the held-out scores through the frozen prefix equal the plain forward's, and a
    second rank of the same sweep computes no row through the bottom blocks again (every state is replayed)."""
    from labs.training import prefix

    prefix.clear()
    cfg = lora.LoraRunConfig(r=4, steps=3, batch_size=2, n_train=8, n_eval=2, score_prompts=2, eval_every=3,
                             max_len=48, last_layers=1, tiny_models=True, lr=1e-2, seed=4)
    model = lora.lora_model(tiny, cfg)
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.1)  # B != 0: the adapter changes the scores
    frozen = prefix.FrozenPrefix(model, (tiny.key, id(tiny.model)))
    assert frozen.usable() and frozen.start == tiny.model.config.num_hidden_layers - 1
    held = lora.encode_pairs(tiny, lora.task_pairs(cfg.task, cfg.n_train, cfg.n_eval, cfg.seed)[1], cfg.max_len)
    pad = training.pad_id(tiny.tokenizer)
    plain = lora.held_out_scores(model, held, pad, "cpu")
    assert lora.held_out_scores(model, held, pad, "cpu", frozen=frozen) == pytest.approx(plain, abs=1e-5)
    assert lora.held_out_scores(model, held, pad, "cpu", frozen=frozen) == pytest.approx(plain, abs=1e-5)
    assert frozen.captured == len(held) and frozen.replayed == len(held)
    prefix.clear()
    first = jobs.wait(jobs.submit(cfg, functools.partial(lora.train_lora, lm=tiny), replay=False), timeout=120)
    assert first.status == jobs.DONE, first.reason
    stored = prefix.stored_bytes()
    assert stored > 0
    second = jobs.wait(jobs.submit(dataclasses.replace(cfg, r=2), functools.partial(lora.train_lora, lm=tiny),
                                   replay=False), timeout=120)
    assert second.status == jobs.DONE, second.reason
    assert prefix.stored_bytes() == stored  # the same rows: nothing new went through the bottom blocks


def test_tldr_task_score_stops_early_with_the_whole_answers_verdict(tiny):
    """The tldr score cuts each answer where its format is decided; the score equals that of the whole answers."""
    from labs.finetune import sft

    pairs = lora.task_pairs("tldr", 4, 4, 0)[1]
    from labs.serving import generation

    prompts = [generation.render_prompt(tiny, p) for p, _ in pairs]
    whole = sft.greedy_batch(tiny, tiny.model, prompts, 12)
    want = sum(sft.follows_format(a) for a in whole) / len(whole)
    assert lora.task_score(tiny, tiny.model, "tldr", pairs, 12) == want
