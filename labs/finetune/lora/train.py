"""Training one adapter with PEFT: one point of a rank sweep, or one row of the "which matrices" table, on a small
task with an exact answer, scored held-out before and after."""
from __future__ import annotations

import contextlib
import json
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from labs import models
from labs.core.errors import ConfigError
from labs.data.instructions import bundled
from labs.finetune import sft
from labs.finetune.lora.params import INIT_CHOICES, TARGET_NAMES, architecture_of, validate_rank_targets
from labs.models import adapters
from labs.runs import results
from labs.serving import generation
from labs.training import loop as training
from labs.training.kernels import training_kernels
from labs.training.prefix import FrozenPrefix


# ---------------------------------------------------------------------------------------------------
# 2. Training one adapter (one point of a rank sweep / one row of the "which matrices" table)
# ---------------------------------------------------------------------------------------------------
TASKS = {
    "tldr": "The project's TL;DR answer-card instructions (assets/sft/, shared with the fine-tuning lab): "
            "learn to answer 'TL;DR: …' then bullets.",
    "arithmetic": "Two-number sums answered in one fixed sentence (generated, exact answers).",
}


def arithmetic_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """A tiny task whose answer format the model must learn: 'What is 17 + 25?' -> '17 + 25 = 42.'
    Generated (no dataset needed); disjoint train / held-out sets come from different seeds."""
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(n):
        a, b = (int(x) for x in torch.randint(2, 99, (2,), generator=g))
        pairs.append((f"What is {a} + {b}?", f"{a} + {b} = {a + b}."))
    return pairs


def task_pairs(task: str, n_train: int, n_eval: int, seed: int = 0) -> tuple[list[tuple], list[tuple]]:
    """(train, held-out) lists of (prompt, response); a prompt is a string or a list of chat messages."""
    if task == "tldr":

        train, held = bundled()
        train = random.Random(seed).sample(train, min(n_train, len(train)))
        return [(ex.messages(), ex.output) for ex in train], [(ex.messages(), ex.output) for ex in held[:n_eval]]
    if task == "arithmetic":
        train = arithmetic_pairs(n_train, seed)
        seen = set(train)
        held = [p for p in arithmetic_pairs(n_eval * 3, seed + 10_000) if p not in seen][:n_eval]
        return train, held
    raise ConfigError(f"Unknown task '{task}'. Choose from: {', '.join(TASKS)}.")


def task_success(task: str, prompt, answer: str, reference: str) -> bool:
    """Did a greedy answer do the task? tldr: the answer card's format (the fine-tuning lab's check);
    arithmetic: the correct sum is in the answer."""
    if task == "tldr":
        return sft.follows_format(answer)
    return reference.rstrip(".").split("= ")[-1] in answer


def task_score(lm: models.LoadedModel, model: torch.nn.Module, task: str, pairs: Sequence[tuple],
               max_new_tokens: int = 32) -> float:
    """Share of held-out prompts whose greedy answer succeeds (batched generation, left padding). A tldr answer
    leaves the batch once its format verdict is decided (sft.format_decided: the same verdict as the whole answer)."""
    if not pairs:
        return float("nan")
    prompts = [generation.render_prompt(lm, p) for p, _ in pairs]
    was_training = model.training
    model.eval()
    answers = sft.greedy_batch(lm, model, prompts, max_new_tokens, done=sft.format_decided if task == "tldr" else None)
    model.train(was_training)
    return sum(task_success(task, p, a, r) for (p, r), a in zip(pairs, answers)) / len(pairs)


_BASE: dict[tuple, Any] = {}  # what the untrained adapted model scores, per (model, what was scored)
B_ZERO_INITS = ("gaussian", "default")  # B = 0 at the start: the adapted model is the base model until step 1


def base_score(lm: models.LoadedModel, cfg: "LoraRunConfig", what: tuple, score: Callable[[], Any]) -> Any:
    """A score of the model before training. With B = 0 at the start (the paper's init, and PEFT's default) the
    adapted model answers exactly as the base model, so every run of a sweep on the same examples shares one score,
    computed once per process; an init that moves W0 (PiSSA, OLoRA) is scored on its own model."""
    if cfg.init not in B_ZERO_INITS:
        return score()
    key = (id(lm.model), lm.key, json.dumps(what, default=str))
    if key not in _BASE:
        _BASE[key] = score()
    return _BASE[key]


@dataclass(frozen=True)
class LoraRunConfig:
    """One LoRA training run at the page's default settings (the rank sweep trains one per rank of SWEEP_RANKS)."""

    model_key: str = models.DEFAULT_CHAT_MODEL
    task: str = "tldr"
    r: int = 8
    alpha: float = 16.0  # scaling α/r; the paper sets α to the first r it tries and does not tune it (Section 4.1)
    targets: tuple[str, ...] = ("q_proj", "v_proj")  # the paper's default (Section 7.1)
    last_layers: int = 8  # adapt only the top N layers (0 = all): backward then stops early, ~2× faster
    dropout: float = 0.0
    use_rslora: bool = False  # scaling α/√r (Kalajdzievski 2023) keeps update size stable as r grows
    use_dora: bool = False  # magnitude + direction (Liu et al. 2024)
    init: str = "gaussian"  # the paper: A Gaussian, B zero
    steps: int = 30
    batch_size: int = 4
    lr: float = 2e-3  # LoRA tolerates (and short runs need) a larger learning rate than full fine-tuning
    max_len: int = 96  # the longest TL;DR example is 96 tokens with SmolLM2's chat template
    n_train: int = 64
    n_eval: int = 16
    score_prompts: int = 8  # held-out prompts answered greedily before and after (0 = skip the task score)
    eval_every: int = 10
    precision: str = "auto"  # bf16 autocast for the training steps on CPUs with native bf16 matmuls (labs.training)
    seed: int = 0
    tiny_models: bool = False  # part of the run's identity: a tiny-model run must never replay as a real one

    def __post_init__(self):
        models.spec(self.model_key)
        if self.task not in TASKS:
            raise ConfigError(f"Unknown task '{self.task}'. Choose from: {', '.join(TASKS)}.")
        if self.init not in INIT_CHOICES:
            raise ConfigError(f"Initialisation must be one of {', '.join(INIT_CHOICES)}.")
        if self.use_dora and self.init != "gaussian" and self.init != "default":
            raise ConfigError("DoRA combines with the gaussian or default initialisation only here.")

        self.lora_settings()  # rank, alpha, dropout and target names (validate_rank_targets checks them on the model)
        training.check_between("Steps", self.steps, 1, 2000)
        training.check_between("Batch size", self.batch_size, 1, 64)
        training.check_lr(self.lr, "try 1e-3")
        training.check_between("Max length", self.max_len, 16, 1024, "tokens")
        if not 1 <= self.n_eval <= 256 or not 1 <= self.n_train <= 5000:
            raise ConfigError("Use 1–5000 training and 1–256 held-out examples.")
        if self.last_layers < 0:
            raise ConfigError("Layers to adapt must be 0 (all) or a positive number.")
        if not 0 <= self.score_prompts <= self.n_eval:
            raise ConfigError("The task score uses 0 up to the number of held-out examples.")
        if self.eval_every < 1:
            raise ConfigError("Evaluate every 1 step or more.")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError("precision must be 'auto', 'fp32' or 'bf16'.")

    def lora_settings(self, layers: tuple[int, ...] = ()):
        """This run's training.LoraSettings (the one LoRA setup path), on `layers` (() = every layer)."""
        return training.LoraSettings(r=self.r, alpha=self.alpha, dropout=self.dropout, targets=tuple(self.targets),
                                     use_rslora=self.use_rslora, use_dora=self.use_dora,
                                     init_lora_weights=_init_value(self.init), layers=tuple(layers))

    @property
    def label(self) -> str:
        """Short legend name of the run, e.g. "r=8 · W_q+W_v"."""
        names = "+".join(TARGET_NAMES.get(t, t) for t in self.targets)
        return f"r={self.r} · {names}"


def _init_value(init: str):
    return True if init == "default" else init


def lora_model(lm: models.LoadedModel, cfg: LoraRunConfig) -> torch.nn.Module:
    """PEFT LoRA on a copy of the shared model (labs.training.loop), restricted to the top `last_layers` layers."""
    arch = architecture_of(lm.model, lm.spec.display_name)
    validate_rank_targets(arch, cfg.targets, cfg.r)
    layers = range(arch.layers - cfg.last_layers, arch.layers) if 0 < cfg.last_layers < arch.layers else ()
    # ("the last 8 layers" of a 2-layer test model = all of them)
    model, _, _ = training.trainable_model(lm, "lora", cfg.lora_settings(tuple(layers)), seed=cfg.seed)
    return model


def encode_pairs(lm: models.LoadedModel, pairs: Sequence[tuple[str, str]], max_len: int) -> list[dict]:
    """(prompt, response) pairs rendered with the chat template and tokenised with the loss mask, max_len tokens."""
    return [training.tokenize_example(lm.tokenizer, generation.render_prompt(lm, p), r, max_len=max_len)
            for p, r in pairs]


@torch.no_grad()
def held_out_scores(model: torch.nn.Module, examples: list[dict], pad_id: int, device, batch_size: int = 8,
                    frozen: FrozenPrefix | None = None) -> dict:
    """Mean cross-entropy per response token, and teacher-forced token accuracy (the 'task score'). `frozen`: the
    model's frozen bottom blocks replay their stored states (labs.training.prefix)."""
    was_training = model.training
    model.eval()
    nll, correct, count = 0.0, 0, 0
    for i in range(0, len(examples), batch_size):
        batch = training.to_device(training.collate(examples[i:i + batch_size], pad_id), device)
        with frozen.around(batch["input_ids"], batch["attention_mask"]) if frozen else contextlib.nullcontext():
            logits, labels = training.labelled_logits(model, batch["input_ids"], batch["labels"],
                                                      batch["attention_mask"])
        logp, mask = training.token_logprobs(logits, labels)
        nll -= float(logp.sum())
        correct += int(((logits[:, :-1].argmax(-1) == labels[:, 1:]) & mask).sum())
        count += int(mask.sum())
    model.train(was_training)
    return {"val_loss": nll / max(count, 1), "val_accuracy": correct / max(count, 1)}


def _trainable_state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Bytes of what training adds on top of frozen weights: adapter weights, their gradients, Adam's moments."""
    total = 0
    for p in model.parameters():
        if p.requires_grad:
            total += p.numel() * p.element_size() * 2  # weight + gradient
    for state in optimizer.state.values():
        total += sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v))
    return total


def train_lora(ctx, lm: models.LoadedModel) -> dict:
    """The step function of one run (labs.runs.jobs): train, log train/held-out loss, save the adapter."""
    cfg: LoraRunConfig = ctx.config
    torch.manual_seed(cfg.seed)
    device = next(lm.model.parameters()).device
    pad_id = training.pad_id(lm.tokenizer)
    train_pairs, held_pairs = task_pairs(cfg.task, cfg.n_train, cfg.n_eval, cfg.seed)
    train_ex, held_ex = encode_pairs(lm, train_pairs, cfg.max_len), encode_pairs(lm, held_pairs, cfg.max_len)
    model = lora_model(lm, cfg)
    # LoRA on the top `last_layers` blocks: the blocks below run once per row, for every step, evaluation and run
    frozen = FrozenPrefix(model, (lm.key, id(lm.model)))
    trainable, total = training.count_parameters(model)
    init_dir = None
    if cfg.init in ("pissa_niter_4", "olora"):  # these move W0; keep the start to convert the result to plain LoRA
        init_dir = ctx.artifacts / "adapter_init"
        model.peft_config["default"].init_lora_weights = True
        model.save_pretrained(str(init_dir))
        model.peft_config["default"].init_lora_weights = _init_value(cfg.init)
    params = [p for p in model.parameters() if p.requires_grad]
    ctx.set_total(cfg.steps)
    ctx.note(f"{cfg.label}: {trainable:,} trainable of {total:,} parameters ({100 * trainable / total:.3f}%)")
    scored = held_pairs[: cfg.score_prompts]
    score_before = base_score(lm, cfg, ("task score", cfg.task, scored),
                              lambda: task_score(lm, model, cfg.task, scored)) if scored else None
    g = torch.Generator().manual_seed(cfg.seed)

    def batches():
        while True:
            pick = torch.randint(len(train_ex), (cfg.batch_size,), generator=g).tolist()
            yield training.to_device(training.collate([train_ex[i] for i in pick], pad_id), device)

    def loss_fn(batch) -> training.StepOutput:
        with frozen.around(batch["input_ids"], batch["attention_mask"]):
            loss, _ = training.causal_lm_loss(model, batch)  # next-token cross-entropy on the answer tokens
        return training.StepOutput(loss, tokens=int(batch["attention_mask"].sum()))

    # held-out loss before training (step 0), every eval_every steps and after the last
    loop = training.LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup=max(1, cfg.steps // 10),
                                 eval_every=cfg.eval_every, eval_at_start=True, precision=cfg.precision)
    started = time.perf_counter()
    def evaluate(step: int) -> dict:  # under the training steps' autocast
        with training.autocast(device, cfg.precision):
            if step == 0:
                return base_score(lm, cfg, ("held out", held_ex, cfg.precision),
                                  lambda: held_out_scores(model, held_ex, pad_id, device, frozen=frozen))
            return held_out_scores(model, held_ex, pad_id, device, frozen=frozen)

    with training_kernels(model, device, cfg.precision):
        fit = training.fit(ctx, params, batches(), loss_fn, loop, evaluate=evaluate, device=device)
    seconds = time.perf_counter() - started
    base, last, optimizer, tokens_seen = fit.first_eval, fit.last_eval, fit.optimizer, fit.tokens
    score_after = task_score(lm, model, cfg.task, scored) if scored else None
    if scored:
        ctx.note(f"task score (greedy, {len(scored)} held-out prompts): {score_before:.0%} before, {score_after:.0%} after")
    memory = _trainable_state_bytes(model, optimizer)
    peak_cuda = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    folder = ctx.artifacts / "adapter"
    meta = {"label": f"LoRA {cfg.label} ({cfg.task})", "base_model": lm.key, "page": "lora",
            "r": cfg.r, "alpha": cfg.alpha, "targets": list(cfg.targets), "init": cfg.init, "run_id": ctx.run_id}
    if init_dir is not None:
        model.save_pretrained(str(folder), path_initial_model_for_weight_conversion=str(init_dir))

        (folder / adapters.META).write_text(json.dumps(dict(meta, created=time.time()), indent=2))
    else:
        adapters.save_adapter(model, folder, meta)
    return {"label": cfg.label, "r": cfg.r, "targets": list(cfg.targets), "trainable_params": trainable,
            "total_params": total, "base_val_loss": base["val_loss"], "base_val_accuracy": base["val_accuracy"],
            "final_val_loss": last["val_loss"], "final_val_accuracy": last["val_accuracy"],
            "task_score_before": score_before, "task_score_after": score_after,
            "train_seconds": seconds, "tokens_per_s": tokens_seen / max(seconds, 1e-9),
            "train_state_mb": memory / 2**20, "peak_cuda_mb": peak_cuda / 2**20 if peak_cuda else None,
            "adapter": str(folder)}


results.register(LoraRunConfig, results.read_lora)
