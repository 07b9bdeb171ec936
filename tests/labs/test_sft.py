"""SFT invariants: the loss mask, the fast loss equals the naive one, LoRA starts at the base model, the
before side of before/after really is the base model, and the loss falls."""
import dataclasses
import json

import pytest
import torch

from labs.serving import generation
from labs.runs import jobs
from labs.finetune import sft
from labs.training import loop as training
from labs.data.instructions import Example

EX = Example("What is the capital of Peru?", "TL;DR: Lima.\n- Lima is the capital of Peru.\n- It lies on the coast.")
EX_INPUT = Example("Classify the sentiment.", "TL;DR: Positive.\n- It praises.\n- Tone is positive.", input="Great!")


@pytest.mark.parametrize("template", ["chat", "alpaca", "plain"])
def test_mask_is_minus_100_exactly_on_prompt_tokens(tiny, template):
    prompt, response = sft.render(EX_INPUT, template, tiny.tokenizer)
    n_prompt = len(tiny.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    row = sft.tokenize([EX_INPUT], tiny.tokenizer, template).rows[0]
    assert row["labels"][:n_prompt] == [training.IGNORE] * n_prompt
    assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:]  # every answer token (and EOS) is trained
    assert row["input_ids"][-1] == tiny.tokenizer.eos_token_id
    view = sft.token_view(tiny.tokenizer, EX_INPUT, template)
    assert [not t["trained"] for t in view] == [i < n_prompt for i in range(len(view))]
    everything = sft.tokenize([EX_INPUT], tiny.tokenizer, template, train_on_prompt=True).rows[0]
    assert everything["labels"] == everything["input_ids"]


def test_alpaca_template_is_verbatim():
    prompt, _ = sft.render(EX_INPUT, "alpaca", None)
    assert prompt.startswith("Below is an instruction that describes a task, paired with an input")
    assert prompt.endswith("### Input:\nGreat!\n\n### Response:\n")
    assert "### Input" not in sft.render(EX, "alpaca", None)[0]


def test_chat_template_needs_a_chat_model(tiny_gemma):
    with pytest.raises(Exception, match="no chat template"):
        sft.render(EX, "chat", tiny_gemma.tokenizer)


def test_long_rows_are_truncated_and_counted(tiny):
    long = Example("Say a lot.", "word " * 300)
    data = sft.tokenize([long, EX], tiny.tokenizer, "chat", max_len=64)
    assert data.truncated == 1 and data.dropped == 0
    assert all(len(r["input_ids"]) <= 64 for r in data.rows)
    tiny_limit = sft.tokenize([long], tiny.tokenizer, "chat", max_len=16)
    assert tiny_limit.dropped == 1 and not tiny_limit.rows  # the prompt alone is longer: nothing to learn


@pytest.mark.parametrize("which", ["tiny", "tiny_gemma"])
def test_supervised_loss_equals_the_naive_full_logits_loss(which, request):
    lm = request.getfixturevalue(which)
    template = "chat" if which == "tiny" else "alpaca"
    rows = sft.tokenize([EX, EX_INPUT], lm.tokenizer, template).rows
    batch = training.collate(rows, sft.pad_id(lm.tokenizer))
    with torch.no_grad():
        fast, n_fast = sft.supervised_loss(lm.model, batch)
        naive, n_naive = training.causal_lm_loss(lm.model, batch)
    assert n_fast == n_naive > 0
    torch.testing.assert_close(fast, naive, atol=1e-5, rtol=1e-5)


def _logits(model, lm, text="Hello there, how are you?"):
    ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_lora_with_b_zero_leaves_outputs_unchanged(tiny):
    cfg = sft.SFTConfig()
    model, trainable, total = training.trainable_model(tiny, "lora", lora=cfg.lora())
    assert all(float(p.detach().abs().sum()) == 0 for n, p in model.named_parameters() if "lora_B" in n)
    torch.testing.assert_close(_logits(model, tiny), _logits(tiny.model, tiny), atol=0, rtol=0)


@pytest.mark.parametrize("mode, top", [("lora", 0), ("lora", 1), ("last_n", 0), ("full", 0)])
def test_trainable_count_from_shapes_matches_peft(tiny, mode, top):
    cfg = sft.SFTConfig(mode=mode, last_n=1, lora_targets=("q_proj", "down_proj"), lora_layers=top)
    n_layers = len(training.decoder_layers(tiny.model))
    _, trainable, total = training.trainable_model(tiny, mode, lora=cfg.lora(n_layers), last_n=1)
    assert sft.count_trainable(tiny, cfg) == (trainable, total)
    if top:  # the top block only: half of the two blocks' adapters
        assert trainable * 2 == sft.count_trainable(tiny, dataclasses.replace(cfg, lora_layers=0))[0]


def test_config_validation_says_how_to_fix():
    with pytest.raises(ValueError, match="learning rate"):
        sft.SFTConfig(lr=float("nan"))
    with pytest.raises(ValueError, match="targets"):
        sft.SFTConfig(lora_targets=("wrong",))
    with pytest.raises(ValueError, match="template"):
        sft.SFTConfig(template="vicuna")
    with pytest.raises(ValueError, match="top blocks"):
        sft.SFTConfig(lora_layers=-1)


def test_format_score_and_correctness():
    assert sft.follows_format("TL;DR: Lima.\n- Lima is the capital.")
    assert not sft.follows_format("The capital of Peru is Lima.")
    assert not sft.follows_format("TL;DR: Lima.")  # the card needs its bullets
    assert sft.is_correct("TL;DR: Lima.\n- x", EX.output)
    assert not sft.is_correct("TL;DR: Cusco.\n- x", EX.output)


ANSWERS = ["TL;DR: Lima.\n- Lima is the capital.\n- It is on the coast.", "TL;DR: Lima.\n\n  - Lima\nmore",
           "TL;DR: Lima.\nLima is the capital.\n- a bullet too late", "TL;DR: Lima.\n-Lima\n- x", "TL;DR:  \n- x\n",
           "The capital of Peru is Lima.\n\nTL;DR: Lima.\n- x", "  \nTL;DR: Cusco.\n- Cusco\n", "Lima\n- x\n",
           "TL;DR Lima.\n- x\n", "TL;DR: Lima.\n- \n- x", "TL;DR: Lima, of course, in Peru\n\n\n- Yes it is\n"]


@pytest.mark.parametrize("answer", ANSWERS)
def test_scoring_stops_only_where_the_verdicts_are_decided(answer):
    """Answers are cut where scored_enough first says so: the cut text gets the whole answer's format and
    correctness verdicts, and nothing before that point is enough."""
    cuts = [n for n in range(len(answer) + 1) if sft.scored_enough(answer[:n])]
    assert cuts, "every one of these answers is decided by its end"
    cut = answer[:cuts[0]]
    assert sft.follows_format(cut) == sft.follows_format(answer)
    assert sft.is_correct(cut, EX.output) == sft.is_correct(answer, EX.output)
    assert all(sft.scored_enough(answer[:n]) for n in range(cuts[0], len(answer) + 1))  # it stays decided


FORMAT_ANSWERS = ANSWERS + ["The capital is Lima.", "TL;DR: Lima, of course, in Peru and more words", "TL;", "",
                            "TL;DR: Lima.\n-", "TL;DR: Lima.\n- ", "TL;DR: Lima.\n-  x", " \n TL;DR: Lima.\n  \n- x"]


@pytest.mark.parametrize("answer", FORMAT_ANSWERS)
def test_format_only_scoring_stops_where_the_format_is_decided(answer):
    """A sweep's answers stop where format_decided first says so: whatever follows can no longer change the
    format verdict (checked with continuations that would complete or spoil the card), and the card's answers
    stop at their first bullet's first character, the others within a few characters."""
    cuts = [n for n in range(len(answer) + 1) if sft.format_decided(answer[:n])]
    for n in cuts:
        for more in ("", " x", "\n- x", "- x", "\n\n- y\nz", "x\n- y"):
            assert sft.follows_format(answer[:n] + more) == sft.follows_format(answer[:n]), (answer[:n], more)
    assert all(sft.format_decided(answer[:n]) for n in range(cuts[0], len(answer) + 1)) if cuts else True
    undecided = [n for n in range(len(answer) + 1) if n not in cuts]
    for n in undecided:  # not decided: some continuation makes it the card and another one does not
        text = answer[:n]
        tails = ["\n\nno", "- y", " y", "\n- y", "x\n- y", " x\n- y", "TL;DR: x\n- y"[len(text.lstrip()):]]
        assert len({sft.follows_format(text + t) for t in tails}) == 2, text
    if answer.startswith("The"):
        assert cuts[0] == 2  # "T" could still open "TL;DR:", "Th" cannot
    if answer == ANSWERS[0]:
        assert answer[:cuts[0]] == "TL;DR: Lima.\n- L"


def test_early_stopped_answers_are_prefixes_of_the_whole_answers(smol):
    """An answer that leaves the batch early is the start of the same greedy answer run to its budget (the tiny
    random model writes only special tokens, so this takes the real one)."""
    train, _ = sft.load_bundled()
    prompts = [sft.prompt_text(smol, ex, "chat") for ex in train[:3]]
    whole = sft.greedy_batch(smol, smol.model, prompts, 24)
    cut = sft.greedy_batch(smol, smol.model, prompts, 24, done=lambda text: len(text.split()) >= 3)
    assert all(w.startswith(c) for w, c in zip(whole, cut)) and any(len(c) < len(w) for w, c in zip(whole, cut))


def _run(lm, **overrides):
    """A short run on the tiny model, through the real job queue."""
    import functools

    train, held = sft.load_bundled()
    cfg = sft.SFTConfig(**dict(dict(n_examples=8, epochs=6, batch_size=4, lr=1e-2, eval_every=3, score_examples=2,
                                    score_tokens=8, val_examples=4, seed=3), **overrides))
    run_id = jobs.submit(cfg, functools.partial(sft.train, lm=lm, train_examples=train, heldout=held), replay=False)
    run = jobs.wait(run_id, timeout=300)
    assert run.status == jobs.DONE, run.reason
    return run


@pytest.fixture(scope="module")
def trained_run(tiny):
    return _run(tiny)


def test_loss_falls_on_the_bundled_set(tiny):
    """Full fine-tuning of the tiny random model memorises 8 examples: the loss must fall well below log V."""
    run = _run(tiny, mode="full", lr=1e-2, score_examples=0)
    losses = [m["train_loss"] for m in run.metrics if "train_loss" in m]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 * 0.8
    assert run.metrics[0]["step"] == 0 and "val_loss" in run.metrics[0]  # validation before training, too
    sft._TUNED.clear()  # reload the saved weights (full mode saves the changed tensors)
    tuned = sft.tuned_model(tiny, run)
    batch = training.collate(sft.tokenize([EX], tiny.tokenizer, "chat").rows, 2)
    with torch.no_grad():
        assert sft.supervised_loss(tuned, batch)[0] < sft.supervised_loss(tiny.model, batch)[0]


def test_before_side_really_has_the_adapter_off(tiny, trained_run):
    pristine = _logits(tiny.model, tiny)
    sft._TUNED.clear()  # force a reload from the saved adapter, the page's path after a restart
    tuned = sft.tuned_model(tiny, trained_run)
    assert tuned is not tiny.model
    after = _logits(tuned, tiny)
    assert not torch.allclose(after, pristine, atol=1e-4)  # training changed the tuned model
    with sft.base_side(tiny, tuned) as base:
        torch.testing.assert_close(_logits(base, tiny), pristine, atol=0, rtol=0)  # adapter truly off
    torch.testing.assert_close(_logits(tuned, tiny), after)  # and on again afterwards
    # the streaming "before" column uses the shared base model itself
    cfg = generation.GenerationConfig(max_new_tokens=5, temperature=0)
    prompt = sft.prompt_text(tiny, EX, "chat")
    before = "".join(sft.stream_answer(tiny, tiny.model, prompt, cfg))
    assert before == generation.generate(tiny, EX.messages(), cfg)


def test_a_sweep_run_scores_the_format_only(tiny, trained_run):
    """sweep_config scores only the format: its answers are prefixes of the whole run's answers (the same tuned
    model), the format score is theirs, and correctness is not reported (None), on the page too."""
    cfg = sft.sweep_config(sft.SFTConfig(), 16)
    assert (cfg.score_until, cfg.n_examples) == ("format", 16)
    with pytest.raises(ValueError, match="score_until"):
        sft.SFTConfig(score_until="bullet")
    _, held = sft.load_bundled()
    tuned = sft.tuned_model(tiny, trained_run)
    whole = sft.task_score(tiny, tuned, held[:3], "chat", 8)
    cut = sft.task_score(tiny, tuned, held[:3], "chat", 8, until="format")
    assert cut["correct_after"] is None and cut["correct_before"] is None
    assert whole["correct_after"] is not None
    for w, c in zip(whole["rows"], cut["rows"]):
        assert w["after"].startswith(c["after"]) and w["before"].startswith(c["before"])
        assert c["format_after"] == w["format_after"]
    with pytest.raises(ValueError, match="until"):
        sft.task_score(tiny, tuned, held[:1], "chat", 8, until="bullet")


def test_run_saves_a_registered_adapter_and_a_score(trained_run):
    from labs.models import adapters

    assert any(a.path.startswith(str(trained_run.artifacts)) and a.base_model == "smollm2-135m-instruct"
               for a in adapters.list_adapters())
    score = json.loads((trained_run.artifacts / "score.json").read_text())
    assert len(score["rows"]) == 2 and 0 <= score["format_after"] <= 1
    assert trained_run.summary["achieved_gflops"] > 0


def test_estimate_is_positive_and_lora_is_cheaper_than_full(tiny):
    train, _ = sft.load_bundled()
    data = sft.tokenize(train[:8], tiny.tokenizer, "chat")
    lora = sft.estimate(tiny, sft.SFTConfig(), data)
    full = sft.estimate(tiny, sft.SFTConfig(mode="full"), data)
    assert 0 < lora["trainable_pct"] < full["trainable_pct"] == 100
    assert lora["memory_total_mb"] < full["memory_total_mb"]
    assert 0 < lora["flops_per_step"] < full["flops_per_step"]
    # the top block only: the bottom one runs once per row, so every epoch after the first costs less
    top = [sft.estimate(tiny, sft.SFTConfig(lora_layers=1, epochs=e), data) for e in (1, 4)]
    every = sft.estimate(tiny, sft.SFTConfig(lora_layers=0, epochs=4), data)
    assert top[1]["seconds_total"] < every["seconds_total"]
    assert top[1]["seconds_total"] < 4 * top[0]["seconds_total"] and top[1]["flops_per_step"] < top[0]["flops_per_step"]


def test_merged_export_equals_the_adapter_model(tiny, trained_run):
    from transformers import AutoModelForCausalLM

    folder = sft.export_merged(tiny, trained_run)
    merged = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    tuned = sft.tuned_model(tiny, trained_run)
    torch.testing.assert_close(_logits(merged, tiny), _logits(tuned, tiny), atol=1e-4, rtol=1e-4)
    assert len(sft.zip_folder(folder)) > 0


def test_lima_verdicts_from_a_run_and_from_a_size_sweep():
    from labs.runs import lessons

    assert sft.format_verdict({"format_before": 0.0, "format_after": 1.0}, 64).verdict == lessons.HOLDS
    assert sft.format_verdict({"final_val_loss": 1.0}, 64).verdict == lessons.NOT_MEASURED
    points = sft.size_points([(32, {"format_before": 0.0, "format_after": 0.875, "final_val_loss": 1.5}),
                              (8, {"format_before": 0.0, "format_after": 0.0, "final_val_loss": 2.2}),
                              (16, {"format_before": 0.0, "format_after": 0.25, "final_val_loss": 1.9})])
    assert [p["examples"] for p in points] == [8, 16, 32]
    v = sft.size_verdict(points)
    assert v.verdict == lessons.HOLDS and "with 32 examples" in v.figure and "sweep: 8: 0%, 16: 25%, 32: 88%" in v.figure
    assert [p["val_loss"] for p in v.figures["sweep"]] == [2.2, 1.9, 1.5]
    low = sft.size_verdict(points[:2])
    assert low.verdict == lessons.FAILS and "up to 16 examples" in low.reason
    assert sft.size_verdict([]).verdict == lessons.NOT_MEASURED
