import torch

from labs.models import adapters
from labs.training import loop as training
from labs.training.kernels import training_kernels


def test_tokenize_masks_prompt_and_appends_eos(tiny):
    ex = training.tokenize_example(tiny.tokenizer, "Question: 2+2?\nAnswer:", " 4")
    n_prompt = ex["prompt_len"]
    assert all(label == training.IGNORE for label in ex["labels"][:n_prompt])
    assert ex["labels"][n_prompt:] == ex["input_ids"][n_prompt:]
    assert ex["input_ids"][-1] == tiny.tokenizer.eos_token_id
    trained_on_prompt = training.tokenize_example(tiny.tokenizer, "Question: 2+2?\nAnswer:", " 4", train_on_prompt=True)
    assert trained_on_prompt["labels"] == trained_on_prompt["input_ids"]


def test_sequence_logprobs_equals_manual_sum(tiny):
    ex = training.tokenize_example(tiny.tokenizer, "Hello there", " general Kenobi")
    batch = training.collate([ex, training.tokenize_example(tiny.tokenizer, "Hi", " you")], tiny.tokenizer.eos_token_id)
    total, count = training.sequence_logprobs(tiny.model, **batch)
    logits = tiny.model(input_ids=batch["input_ids"][:1]).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    manual = sum(logp[t - 1, batch["input_ids"][0, t]] for t in range(ex["prompt_len"], len(ex["input_ids"])))
    assert torch.allclose(total[0], manual, atol=1e-4)
    assert int(count[0]) == len(ex["input_ids"]) - ex["prompt_len"]


def test_lora_starts_equal_to_base_and_copy_leaves_shared_model(tiny, tmp_path):
    model, trainable, total = training.trainable_model(tiny, "lora", training.LoraSettings(r=4))
    assert 0 < trainable < total
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, tiny.model(input_ids=ids).logits, atol=1e-5)  # B = 0
    assert not any(p.requires_grad for p in tiny.model.parameters())
    adapters.save_adapter(model, tmp_path / "adapter", {"label": "t", "base_model": tiny.key})
    loaded = adapters.load_adapter(tiny, tmp_path / "adapter")
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)


def test_last_n_trains_only_the_last_layers(tiny):
    model, trainable, total = training.trainable_model(tiny, "last_n", last_n=1)
    layers = training.decoder_layers(model)
    assert all(p.requires_grad for p in layers[-1].parameters())
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert trainable < total


def test_schedule_warms_up_then_decays():
    s = training.Schedule(lr=1e-3, total_steps=100, warmup=10)
    assert s.at(5) < s.at(10) == 1e-3
    assert s.at(100) < s.at(50) < s.at(11)


# -- the shared loop (training.fit) -------------------------------------------------------------------------------

import dataclasses  # noqa: E402
import math  # noqa: E402
import threading  # noqa: E402

import pytest  # noqa: E402

from labs.runs import jobs  # noqa: E402


def test_schedule_values_warmup_then_cosine_linear_constant():
    cos = training.Schedule(lr=1.0, total_steps=10, warmup=2)
    assert [cos.at(s) for s in (1, 2)] == [0.5, 1.0]  # linear warm-up to the peak
    assert cos.at(6) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))  # halfway: 0.55
    assert cos.at(10) == pytest.approx(0.1)  # decays to 10% on the last step
    lin = training.Schedule(lr=1.0, total_steps=10, warmup=2, kind="linear")
    assert lin.at(6) == pytest.approx(0.55) and lin.at(10) == pytest.approx(0.1)
    const = training.Schedule(lr=1.0, total_steps=10, warmup=2, kind="constant")
    assert [const.at(s) for s in (1, 2, 3, 10)] == [0.5, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="schedule"):
        training.Schedule(lr=1.0, total_steps=10, kind="step")


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    steps: int = 12
    lr: float = 0.5
    warmup: int = 3
    eval_every: int = 5
    nan_at: int = 0
    seed: int = 0


def fit_line(ctx, started: threading.Event | None = None, release: threading.Event | None = None):
    """Fit y = 3x with one weight through the shared loop; optionally pause after step 1 until released."""
    cfg = ctx.config
    torch.manual_seed(cfg.seed)
    w = torch.nn.Parameter(torch.zeros(1))
    evaluations = []

    def batches():
        g = torch.Generator().manual_seed(cfg.seed)
        while True:
            x = torch.randn(8, generator=g)
            yield x, 3 * x

    def loss_fn(batch):
        x, y = batch
        loss = ((w * x - y) ** 2).mean()
        step = len(evaluations)
        if cfg.nan_at and ctx._run.step + 1 == cfg.nan_at:
            loss = loss * float("nan")
        if started is not None and ctx._run.step == 1:
            started.set()
            release.wait(10)
        return training.StepOutput(loss, tokens=len(x), metrics={"w": float(w.detach())}, flops=2.0 * len(x) * step)

    def evaluate(step):
        evaluations.append(step)
        return {"val_loss": float(((w.detach() - 3) ** 2).sum())}

    ctx.set_total(cfg.steps)
    settings = training.LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup=cfg.warmup, eval_every=cfg.eval_every,
                                     eval_at_start=True)
    result = training.fit(ctx, [w], batches(), loss_fn, settings, evaluate=evaluate)
    return {"w": float(w.detach()), "evaluations": evaluations, "final_loss": result.final_loss,
            "gflops": result.achieved_gflops, "tokens_per_s": result.tokens_per_s}


@pytest.fixture
def manager():
    return jobs.JobManager(max_workers=1)


def test_fit_trains_logs_schedule_and_evaluates_on_cadence(manager):
    run = manager.wait(manager.submit(LoopConfig(), fit_line), 30)
    assert run.status == jobs.DONE, run.reason
    assert abs(run.summary["w"] - 3) < 1.5  # it learned (from 0)
    assert [m["step"] for m in run.metrics] == list(range(0, 13))
    evals = [m["step"] for m in run.metrics if "val_loss" in m]
    assert evals == [0, 5, 10, 12] == run.summary["evaluations"]  # at start, every 5 steps and after the last
    schedule = training.Schedule(0.5, 12, warmup=3)
    assert [m["lr"] for m in run.metrics[1:]] == pytest.approx([schedule.at(s) for s in range(1, 13)])
    assert all({"train_loss", "lr", "grad_norm", "tokens_per_s", "w"} <= set(m) for m in run.metrics[1:])
    assert run.summary["gflops"] > 0 and run.summary["tokens_per_s"] > 0
    assert run.summary["final_loss"] == pytest.approx(run.metrics[-1]["train_loss"])


def test_fit_stops_within_one_step(manager):
    started, release = threading.Event(), threading.Event()
    run_id = manager.submit(LoopConfig(steps=50), lambda ctx: fit_line(ctx, started, release))
    assert started.wait(10)  # step 2 is running
    manager.stop(run_id)
    release.set()
    run = manager.wait(run_id, 30)
    assert run.status == jobs.STOPPED
    assert run.metrics[-1]["step"] == 2  # the step in flight finishes, no further step starts


def test_fit_nan_loss_ends_the_run_with_a_reason_before_the_update(manager):
    run = manager.wait(manager.submit(LoopConfig(nan_at=4), fit_line), 30)
    assert run.status == jobs.FAILED
    assert "diverged" in run.reason and "step 4" in run.reason and "learning rate" in run.reason
    assert run.metrics[-1]["step"] == 4 and math.isnan(run.metrics[-1]["train_loss"])
    assert "grad_norm" not in run.metrics[-1]  # no backward, no update on a NaN loss


def test_same_config_and_seed_replays_the_stored_run(manager):
    first = manager.wait(manager.submit(LoopConfig(seed=3), fit_line), 30)
    assert first.status == jobs.DONE
    again_id = manager.submit(LoopConfig(seed=3), fit_line)
    assert again_id == first.id
    again = manager.wait(again_id, 30)
    assert again.replayed and again.summary == first.summary and again.metrics == first.metrics
    fresh = jobs.JobManager(max_workers=1)  # a restarted app reads the stored run from disk
    stored = fresh.wait(fresh.submit(LoopConfig(seed=3), fit_line), 30)
    assert stored.replayed and stored.summary["w"] == first.summary["w"]
    assert [m["train_loss"] for m in stored.metrics[1:]] == [m["train_loss"] for m in first.metrics[1:]]


def test_fit_is_deterministic_for_a_seed(manager):
    a = manager.wait(manager.submit(LoopConfig(seed=5, eval_every=4), fit_line), 30)
    b = manager.wait(manager.submit(LoopConfig(seed=5, eval_every=4), fit_line, replay=False), 30)
    assert a.summary["w"] == b.summary["w"]


def test_check_helpers_say_how_to_fix():
    with pytest.raises(ValueError, match="learning rate must be a number between 0 and 1 \\(try 3e-3\\)"):
        training.check_lr(2.0, "try 3e-3")
    with pytest.raises(ValueError, match="learning rate"):
        training.check_lr(float("nan"))
    training.check_lr(0.1, high=0.1, high_allowed=True)
    with pytest.raises(ValueError, match="positive number"):
        training.check_lr(-1, "try 3e-3", high=math.inf)
    with pytest.raises(ValueError, match="^epochs must be between 1 and 50.$"):
        training.check_between("epochs", 0, 1, 50)
    with pytest.raises(ValueError, match="^max_len must be between 16 and 8192 tokens.$"):
        training.check_between("max_len", 8, 16, 8192, "tokens")


def test_pad_id_falls_back_to_eos():
    class Tok:
        pad_token_id, eos_token_id = None, 7

    assert training.pad_id(Tok()) == 7
    Tok.pad_token_id = 0
    assert training.pad_id(Tok()) == 0


def test_labelled_logits_give_the_same_log_probs_as_every_position(tiny):
    """The output layer runs only from the first position that predicts a labelled token: the same log-probs."""
    a = training.tokenize_example(tiny.tokenizer, "A long prompt about the weather today", " sunny")
    b = training.tokenize_example(tiny.tokenizer, "Hi there, how are you on this fine morning?", " Well, friend")
    batch = training.collate([a, b], tiny.tokenizer.eos_token_id)
    with torch.no_grad():
        full = tiny.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logits, labels = training.labelled_logits(tiny.model, batch["input_ids"], batch["labels"],
                                                  batch["attention_mask"])
    assert logits.shape[1] < full.shape[1]  # the prompt's positions before the first answer cost no logits
    want, want_mask = training.token_logprobs(full, batch["labels"])
    got, got_mask = training.token_logprobs(logits, labels)
    assert torch.allclose(want.sum(-1), got.sum(-1), atol=1e-4) and torch.equal(want_mask.sum(-1), got_mask.sum(-1))
    loss, n = training.causal_lm_loss(tiny.model, batch)
    assert n == int(want_mask.sum()) and torch.allclose(loss, -(want.sum() / n), atol=1e-5)


def _top_lora(lm, top: int = 1):
    n = len(training.decoder_layers(lm.model))
    model, *_ = training.trainable_model(lm, "lora", lora=training.LoraSettings(
        targets=("q_proj", "v_proj"), layers=tuple(range(n - top, n))))
    torch.manual_seed(1)
    for p in model.parameters():
        if p.requires_grad:  # B != 0, so the adapter changes the output and the gradients reach both factors
            torch.nn.init.normal_(p, std=0.1)
    return model


def _rows(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for n in lengths:
        ids = torch.randint(5, 1000, (n,), generator=g).tolist()
        rows.append({"input_ids": ids, "labels": [training.IGNORE] * 2 + ids[2:]})
    return rows


@pytest.mark.parametrize("which", ["tiny", "tiny_gemma"])
def test_frozen_prefix_gives_the_same_loss_and_gradients_and_runs_each_row_once(which, request):
    """Top-K LoRA: the bottom blocks' states are computed once per row and replayed in any batch they come in;
    the loss and every trainable gradient equal the plain forward's, and the real blocks are back afterwards
    (Llama, and Gemma 3 whose blocks take per-layer-type masks)."""
    from labs.finetune import sft
    from labs.training import prefix

    tiny = request.getfixturevalue(which)
    prefix.clear()
    model = _top_lora(tiny)
    frozen = prefix.FrozenPrefix(model, (tiny.key, id(tiny.model)))
    assert frozen.start == len(frozen.layers) - 1 and frozen.usable()
    blocks = list(frozen.layers)
    rows = _rows((7, 12, 5, 9))

    def step(batch, use):
        model.zero_grad()
        loss, _ = sft.supervised_loss(model, batch, frozen if use else None)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    for order in ([0, 1, 2], [1, 3, 0], [2, 0, 1, 3]):  # rows come back in other batches, padded to other lengths
        batch = training.collate([rows[i] for i in order], 0)
        want, want_grads = step(batch, False)
        got, got_grads = step(batch, True)
        assert torch.allclose(want, got, atol=1e-5)
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(want_grads, got_grads))
        assert list(frozen.layers) == blocks  # the real blocks are back
    assert frozen.captured == 4 and frozen.replayed == 6  # each of the 4 rows ran through the bottom blocks once
    again = prefix.FrozenPrefix(_top_lora(tiny), (tiny.key, id(tiny.model)))  # another copy of the same base
    again.states(training.collate(rows[:2], 0)["input_ids"], training.collate(rows[:2], 0)["attention_mask"])
    assert again.captured == 0 and again.replayed == 2 and prefix.stored_bytes() > 0


def test_frozen_prefix_stays_off_where_rows_are_not_the_same_twice(tiny):
    """Everything trains (full fine-tune), a left-padded batch, or an error inside: no replay, blocks restored."""
    from labs.training import prefix

    full, *_ = training.trainable_model(tiny, "full")
    assert not prefix.FrozenPrefix(full, ("t", 0)).usable()
    assert not prefix.FrozenPrefix(torch.nn.Sequential(torch.nn.Linear(2, 2)), ("no blocks", 0)).usable()
    frozen = prefix.FrozenPrefix(_top_lora(tiny), ("t", 1))
    ids = torch.tensor([[0, 0, 11, 12], [13, 14, 15, 16]])
    with frozen.around(ids, torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])) as replayed:
        assert not replayed
    blocks = list(frozen.layers)
    try:
        with frozen.around(ids, torch.ones_like(ids)) as replayed:
            assert replayed and type(frozen.layers[0]).__name__ == "_Replay"
            raise ValueError("boom")
    except ValueError:
        pass
    assert list(frozen.layers) == blocks


def test_top_blocks_and_causal_parts(tiny):
    """top_blocks: the top k indices, () for 0 or k >= n (every block); causal_parts unwraps PEFT to the same body."""
    assert training.top_blocks(30, 8) == tuple(range(22, 30))
    assert training.top_blocks(30, 0) == training.top_blocks(2, 8) == ()
    peft = _top_lora(tiny)
    body, head, softcap = training.causal_parts(peft)
    assert body is peft.get_base_model().model and head is peft.get_base_model().lm_head and softcap is None


def test_training_kernels_eager_attention_and_bf16_frozen_weights_then_back(tiny):
    model, _, _ = training.trainable_model(tiny, "lora", training.LoraSettings(r=4, targets=("q_proj",)))
    kernel = model.config._attn_implementation
    assert kernel == "sdpa"  # the shared model's kernel (the tiny model, like SmolLM2, loads with SDPA)
    frozen = model.get_base_model().model.layers[0].mlp.up_proj.weight
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.tensor([[1, 5, 9, 4, 2, 7], [3, 3, 8, 1, 0, 0]])
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    fused = model(input_ids=ids, attention_mask=mask).logits
    cpu = torch.device("cpu")
    model.set_attn_implementation("eager")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast_each_time = model(input_ids=ids, attention_mask=mask).logits
    model.set_attn_implementation(kernel)
    with training_kernels(model, cpu, "bf16"):
        assert model.config._attn_implementation == "eager"
        assert frozen.dtype == torch.bfloat16  # cast once for the whole run
        assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if p.requires_grad)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            held = model(input_ids=ids, attention_mask=mask).logits
        held.float().sum().backward()  # it trains
    assert torch.equal(held, cast_each_time)  # the same bf16 values as autocast's own cast: bit for bit
    assert model.config._attn_implementation == kernel
    assert all(p.dtype == torch.float32 and torch.equal(p.detach(), weights[n]) for n, p in model.named_parameters())
    with training_kernels(model, cpu, "fp32"):
        assert frozen.dtype == torch.float32  # float32 training keeps float32 weights
        eager = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(eager[mask.bool()], fused[mask.bool()], atol=1e-5, rtol=1e-4)  # exact attention both
    with pytest.raises(RuntimeError), training_kernels(model, cpu, "bf16"):
        raise RuntimeError("a failed run")
    assert model.config._attn_implementation == kernel and frozen.dtype == torch.float32  # restored after a failure
