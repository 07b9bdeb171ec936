"""The one training loop every lab plugs its loss into, and the pieces the language-model labs share.

    fit(ctx, params, batches, loss_fn, LoopSettings(steps=30, lr=2e-3, warmup=3), evaluate=...)

The lab supplies its batches and a loss function (next-token loss, DPO eq. 7, a classifier's cross-entropy...,
each kept in the lab's own module with the paper's names); the loop owns what every run does the same way: AdamW,
the learning-rate schedule, gradient clipping, bf16 autocast, the evaluation cadence, logging through the jobs
RunContext (``ctx.log``), Stop, NaN handling, tokens/s and achieved GFLOP/s.

Also here: what to train (full / last-N / LoRA via PEFT), one LoRA settings dataclass, tokenising with loss masks,
batching, sequence log-probabilities, the causal-LM loss and the config checks the labs share.

Shapes: B batch, T time (tokens), V vocabulary.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from peft import LoraConfig, TaskType, get_peft_model

from labs.core.errors import ConfigError
from labs.models import LORA_TARGETS, LoadedModel
from labs.runs import jobs


IGNORE = -100  # label id that the loss skips (PyTorch cross_entropy's ignore_index)

LLAMA_TARGETS = sum(LORA_TARGETS["llama"], ())  # the one list lives in labs.models.targets


# -- config checks every lab's __post_init__ shares (messages say how to fix the value) ---------------------------

def check_lr(lr: float, hint: str = "try 1e-3", high: float = 1.0, high_allowed: bool = False) -> None:
    """A learning rate must be a finite number in (0, high) ((0, high] with high_allowed)."""
    ok = isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0 and (lr <= high if high_allowed else lr < high)
    if not ok:
        if math.isinf(high):
            raise ConfigError(f"The learning rate must be a positive number ({hint}).")
        raise ConfigError(f"The learning rate must be a number between 0 and {high:g} ({hint}).")


def check_between(name: str, value: int, low: int, high: int, unit: str = "") -> None:
    """`name` (epochs, batch size, max length, steps...) must lie in [low, high]."""
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}{' ' + unit if unit else ''}.")


def pad_id(tokenizer) -> int:
    """The padding token id: the tokenizer's own, else end-of-sequence (padded positions are masked anyway)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


@dataclass(frozen=True)
class LoraSettings:
    """LoRA (Hu et al. 2021): W = W0 + (alpha / r) B A, B (d x r) starts at zero, A (r x k) random."""

    r: int = 8  # rank of the update; the paper finds r = 1..8 already works for W_q, W_v
    alpha: float = 16  # scaling numerator; scaling = alpha / r (or alpha / sqrt(r) with rsLoRA)
    dropout: float = 0.0  # dropout on the LoRA input path; 0 for short runs
    targets: tuple[str, ...] = ("q_proj", "v_proj")  # the paper's default choice (Section 7.1)
    use_rslora: bool = False  # rank-stabilised scaling alpha / sqrt(r) (Kalajdzievski 2023)
    use_dora: bool = False  # weight-decomposed LoRA (Liu et al. 2024)
    init_lora_weights: str | bool = True  # True (Kaiming A, zero B), "gaussian", "pissa", "olora"

    layers: tuple[int, ...] = ()  # adapt only these layer indices (PEFT layers_to_transform); () = every layer

    def __post_init__(self):
        if not 1 <= self.r <= 1024:
            raise ConfigError("The rank r must be between 1 and 1024 (r = 0 would be no update at all).")
        if not self.alpha > 0:
            raise ConfigError("alpha must be positive: the update is scaled by α/r.")
        if not 0 <= self.dropout < 1:
            raise ConfigError("Dropout must be in [0, 1).")
        if not self.targets:
            raise ConfigError("Pick at least one weight matrix to adapt (the paper adapts W_q and W_v).")
        # The names depend on the architecture (models.LORA_TARGETS); PEFT says which one a given model lacks.

        known = {t for attention, mlp in LORA_TARGETS.values() for t in attention + mlp}
        unknown = [t for t in self.targets if t not in known]
        if unknown:
            raise ConfigError(f"Unknown LoRA targets {unknown}; Llama-style models use {list(LLAMA_TARGETS)} "
                             f"(other architectures: {sorted(known - set(LLAMA_TARGETS))}).")

    def peft_config(self):
        """The PEFT LoraConfig of these settings: the one place a LoRA run is wired up (fine-tuning, preference
        tuning and the LoRA explorer all come through here)."""
        return LoraConfig(task_type=TaskType.CAUSAL_LM, r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.targets), use_rslora=self.use_rslora, use_dora=self.use_dora,
                          init_lora_weights=self.init_lora_weights,
                          layers_to_transform=list(self.layers) or None)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def decoder_layers(model: torch.nn.Module):
    """The L decoder blocks (an nn.ModuleList) of a causal LM, Llama-style or Gemma-3 (model.language_model)."""
    inner = getattr(model, "model", model)
    inner = getattr(inner, "language_model", inner)
    return inner.layers


def causal_parts(model: torch.nn.Module):
    """(decoder body, lm_head, logit softcap) of a (PEFT-wrapped) causal LM: the body returns hidden states, so a
    caller can run the output layer only where it needs logits."""
    net = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(net, "model", net)
    return (getattr(inner, "language_model", inner), net.lm_head,
            getattr(net.config, "final_logit_softcapping", None))


def top_blocks(n_layers: int, k: int) -> tuple[int, ...]:
    """Indices of the top k of n_layers blocks (LoRA's layers_to_transform); () = every block (k = 0 or k >= n)."""
    return tuple(range(n_layers - k, n_layers)) if 0 < k < n_layers else ()


def trainable_model(lm: LoadedModel, mode: str = "lora", lora: LoraSettings | None = None, last_n: int = 2,
                    seed: int = 0) -> tuple[torch.nn.Module, int, int]:
    """A trainable copy of the shared model (never the shared instance itself).

    mode "lora": PEFT LoRA adapters on a copy (the base weights stay frozen);
    mode "last_n": only the last `last_n` decoder layers and the final norm train;
    mode "full": every weight trains.
    Returns (model, trainable parameters, total parameters).
    """
    if mode not in ("lora", "full", "last_n"):
        raise ConfigError("mode must be 'lora', 'full' or 'last_n'.")
    torch.manual_seed(seed)
    model = copy.deepcopy(lm.model).float() if lm.model.dtype == torch.float16 else copy.deepcopy(lm.model)
    model.train()
    for p in model.parameters():
        p.requires_grad_(mode == "full")
    if mode == "last_n":
        layers = decoder_layers(model)
        if not 1 <= last_n <= len(layers):
            raise ConfigError(f"last_n must be between 1 and {len(layers)} (the model's number of layers).")
        for layer in list(layers)[-last_n:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        inner = getattr(model, "model", model)
        if hasattr(inner, "norm"):
            for p in inner.norm.parameters():
                p.requires_grad_(True)
    elif mode == "lora":
        model = get_peft_model(model, (lora or LoraSettings()).peft_config())
    trainable, total = count_parameters(model)
    return model, trainable, total


def tokenize_example(tokenizer, prompt_text: str, response_text: str, train_on_prompt: bool = False,
                     max_len: int = 512, eos: bool = True) -> dict:
    """Token ids of prompt + response, and labels where masked positions are IGNORE.

    Labels equal the inputs here; the model shifts them by one inside the loss (labels[t] is predicted
    from tokens < t). With train_on_prompt=False only the response tokens (and EOS) are trained.
    """
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response_text, add_special_tokens=False)["input_ids"]
    if eos and tokenizer.eos_token_id is not None:
        response_ids = response_ids + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + response_ids)[:max_len]
    labels = (prompt_ids if train_on_prompt else [IGNORE] * len(prompt_ids)) + response_ids
    labels = labels[:max_len]
    return {"input_ids": input_ids, "labels": labels, "prompt_len": min(len(prompt_ids), max_len)}


def collate(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of tokenize_example dicts into tensors (B, T)."""
    if not examples:
        raise ConfigError("No examples to batch.")
    T = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), T), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), T), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[i, :n] = torch.tensor(e["input_ids"])
        labels[i, :n] = torch.tensor(e["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position log p(label) with the +1 shift: logits (B, T, V), labels (B, T) -> (B, T-1) logp, mask."""
    logits = logits[:, :-1].float()  # position t predicts token t+1
    targets = labels[:, 1:]
    mask = targets != IGNORE
    safe = targets.masked_fill(~mask, 0)
    logp = torch.gather(F.log_softmax(logits, dim=-1), 2, safe.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return logp * mask, mask


def labelled_logits(model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor,
                    attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of the positions from the first one that predicts a labelled token to the end, and the labels cut
    to match, so `token_logprobs(*labelled_logits(...))` equals `token_logprobs(full logits, labels)`.

    The output layer (49k × 576 for SmolLM2) then runs only where the loss looks: on a prompt-masked example the
    prompt's positions cost no logits (transformers' `logits_to_keep`)."""
    T = input_ids.shape[1]
    labelled = (labels[:, 1:] != IGNORE).any(0).nonzero()
    start = int(labelled[0]) if len(labelled) else 0
    try:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=T - start).logits
    except TypeError:  # a model without logits_to_keep: all positions, then the same cut
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    return logits[:, -(T - start):], labels[:, start:]


def sequence_logprobs(model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor,
                      attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over labelled tokens of log p(token | prefix), and the number of such tokens, per sequence (B,)."""
    logp, mask = token_logprobs(*labelled_logits(model, input_ids, labels, attention_mask))
    return logp.sum(-1), mask.sum(-1)


def causal_lm_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over the trained (unmasked) tokens, and how many tokens that was."""
    logp, mask = token_logprobs(*labelled_logits(model, batch["input_ids"], batch["labels"],
                                                 batch.get("attention_mask")))
    n = int(mask.sum())
    return -(logp.sum() / max(n, 1)), n


def to_device(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """The same batch dict with every tensor moved to device."""
    return {k: v.to(device) for k, v in batch.items()}


SCHEDULES = {
    "cosine": "linear warm-up, then cosine decay to 10% (GPT-3 / LLaMA, in miniature)",
    "linear": "linear warm-up, then linear decay to 10%",
    "constant": "linear warm-up, then constant",
}


@dataclass(frozen=True)
class Schedule:
    """The learning rate at each step (1-based): linear warm-up over `warmup` steps, then `kind` (SCHEDULES).

    Decay ends at `floor` x lr on the last step, as in GPT-3's cosine decay to 10% (Brown et al. 2020, appendix B).
    """

    lr: float
    total_steps: int
    warmup: int = 0
    kind: str = "cosine"
    floor: float = 0.1  # final lr as a fraction of the peak

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ConfigError(f"Unknown learning-rate schedule '{self.kind}'; choose one of {list(SCHEDULES)}.")

    def at(self, step: int) -> float:
        """The learning rate at step (1-based; steps past total_steps stay at the final rate)."""
        if self.warmup and step <= self.warmup:
            return self.lr * step / self.warmup
        if self.kind == "constant":
            return self.lr
        progress = min(1.0, (step - self.warmup) / max(1, self.total_steps - self.warmup))
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if self.kind == "cosine" else 1 - progress
        return self.lr * (self.floor + (1 - self.floor) * shape)


# -- precision ----------------------------------------------------------------------------------------------------

def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 matmuls (AVX512-bf16 or AMX), where autocast pays off."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def autocast(device, precision: str):
    """bf16 autocast for the forward pass (matmuls in bf16, loss and optimizer state in fp32), or a no-op.

    precision "fp32": never; "bf16": on CPU and CUDA; "auto": on CPUs with native bf16 matmuls only.
    """
    kind = "cuda" if str(device).startswith("cuda") else "cpu" if str(device) == "cpu" else None
    use = precision == "bf16" or (precision == "auto" and kind == "cpu" and cpu_has_bf16())
    if kind is None or not use:
        return contextlib.nullcontext()
    return torch.autocast(kind, dtype=torch.bfloat16)


def uses_bf16(device, precision: str) -> bool:
    """True when autocast(device, precision) would run in bf16 (else fp32)."""
    return not isinstance(autocast(device, precision), contextlib.nullcontext)


# -- the loop -----------------------------------------------------------------------------------------------------

@dataclass
class StepOutput:
    """What a lab's loss function returns for one batch."""

    loss: torch.Tensor  # scalar to minimise (backward runs on it)
    backward_done: bool = False  # the loss function already ran backward (models trained side by side in threads)
    tokens: int = 0  # tokens processed this step (for tokens/s)
    metrics: dict = field(default_factory=dict)  # extra numbers logged with the step (may override the loop's own)
    flops: float = 0.0  # FLOPs of this step's forward + backward, when the lab can count them (achieved GFLOP/s)


@dataclass(frozen=True)
class LoopSettings:
    """How the shared loop trains. Each lab fills it from its own config (same defaults as before the loop)."""

    steps: int  # optimizer steps in this call
    lr: float  # peak learning rate
    warmup: int = 0  # linear warm-up steps
    schedule: str = "cosine"  # SCHEDULES
    weight_decay: float = 0.0  # AdamW's decoupled weight decay; 0 for adapters, 0.1 for a GPT from scratch
    betas: tuple[float, float] = (0.9, 0.999)  # (0.9, 0.95) for pre-training, as GPT-3 and LLaMA
    clip: float | None = 1.0  # max gradient norm; None = no clipping
    clip_per_group: bool = False  # clip each optimizer param group on its own (several models trained side by side)
    eval_every: int = 0  # evaluate every N steps and after the last step; 0 = only after the last step
    eval_at_start: bool = False  # also evaluate before the first step (logged as step first_step)
    log_every: int = 1  # log every N steps (and at evaluations); 0 = log only at evaluations (Stop is still checked)
    rate_every: int = 1  # tokens/s over windows of N steps (tiny models: one step is too short to time)
    precision: str = "fp32"  # autocast: "fp32", "bf16" or "auto"
    loss_name: str | None = "train_loss"  # the metric the loss is logged as (None: the lab logs it in metrics)
    first_step: int = 0  # logged steps continue from here (several fits in one run)

    def __post_init__(self):
        if self.steps < 1:
            raise ConfigError("A training run needs at least 1 step.")
        check_lr(self.lr, high=math.inf)  # each lab's config sets its own upper bound
        Schedule(self.lr, self.steps, self.warmup, self.schedule)  # validates the kind
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError("precision must be 'auto', 'fp32' or 'bf16'.")

    def schedule_(self) -> Schedule:
        """The Schedule these settings describe (warm-up capped at the number of steps)."""
        return Schedule(self.lr, self.steps, warmup=min(self.warmup, self.steps), kind=self.schedule)


@dataclass
class FitResult:
    """What the loop did: steps, the last logged row and evaluation, time, throughput, the optimizer it used."""

    steps: int
    last: dict  # the last step's metrics
    last_eval: dict  # the last evaluation's numbers ({} if there was none)
    train_seconds: float  # forward + backward + update, evaluations excluded
    tokens: int
    flops: float
    optimizer: torch.optim.Optimizer
    final_loss: float = float("nan")  # the last step's training loss
    first_eval: dict = field(default_factory=dict)  # the evaluation before the first step (eval_at_start)

    @property
    def tokens_per_s(self) -> float:
        """Training throughput in tokens per second (evaluations excluded)."""
        return self.tokens / max(self.train_seconds, 1e-9)

    @property
    def achieved_gflops(self) -> float:
        """Achieved GFLOP/s of training (0 when the lab counts no FLOPs)."""
        return self.flops / max(self.train_seconds, 1e-9) / 1e9


def diverged_message(value: float, step: int) -> str:
    """The readable reason a run stops when its loss becomes NaN / inf: which value, which step, what to try."""
    return (f"The loss became {value} at step {step}: training diverged. "
            "Lower the learning rate (or raise warm-up / gradient clipping) and start again.")


def fit(ctx, params, batches: Iterable, loss_fn: Callable[[Any], StepOutput], settings: LoopSettings,
        evaluate: Callable[[int], dict] | None = None, on_step: Callable[[int, dict], None] | None = None,
        device=None) -> FitResult:
    """Train `params` (tensors, or AdamW param-group dicts) for settings.steps steps.

    Each step: next batch -> loss_fn(batch) under autocast -> NaN check -> backward -> clip -> AdamW step at the
    scheduled lr -> metrics. `evaluate(step)` returns numbers merged into that step's row (every eval_every steps
    and after the last); `on_step(step, row)` may add to a row before it is logged. Logging goes through
    ctx.log, which raises jobs.Stopped when Stop was pressed; a NaN/inf loss raises jobs.Diverged with a
    readable reason before the weights are touched. Fewer batches than steps end the run early.
    """
    groups = list(params)
    if groups and not isinstance(groups[0], dict):
        groups = [{"params": groups}]
    optimizer = torch.optim.AdamW(groups, lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay)
    all_params = [p for g in optimizer.param_groups for p in g["params"]]
    if device is None:
        device = all_params[0].device if all_params else "cpu"
    schedule = settings.schedule_()
    first, n = settings.first_step, settings.steps
    last_eval: dict = {}
    first_eval: dict = {}
    if settings.eval_at_start and evaluate is not None:
        last_eval = first_eval = dict(evaluate(first))
        ctx.log(step=first, **last_eval)
    row: dict = {}
    train_seconds, tokens, flops, window_tokens, window_seconds = 0.0, 0, 0.0, 0, 0.0
    it = iter(batches)
    done, loss_value = 0, float("nan")
    for i in range(1, n + 1):
        try:
            batch = next(it)
        except StopIteration:
            break
        step = first + i
        lr = schedule.at(i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        t0 = time.perf_counter()
        with autocast(device, settings.precision):
            out = loss_fn(batch)
        loss_value = float(out.loss.detach())
        row = {"step": step}
        if settings.loss_name:
            row[settings.loss_name] = loss_value
        row["lr"] = lr
        if not math.isfinite(loss_value):
            row.update(out.metrics)
            ctx.log(**row)  # records the row; raises Diverged when the loss is one of the checked keys
            raise jobs.Diverged(diverged_message(loss_value, step))
        if not out.backward_done:
            out.loss.backward()
        grad_norm = None
        if settings.clip is not None:
            if settings.clip_per_group:
                norms = [torch.nn.utils.clip_grad_norm_(g["params"], settings.clip) for g in optimizer.param_groups]
                grad_norm = max(float(x) for x in norms)
            else:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(all_params, settings.clip))
        optimizer.step()  # the only optimizer step in labs/: every lab trains through here
        optimizer.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        done = i
        train_seconds += dt
        tokens += out.tokens
        flops += out.flops
        window_tokens, window_seconds = window_tokens + out.tokens, window_seconds + dt
        if out.tokens and (i % settings.rate_every == 0 or i == n):
            row["tokens_per_s"] = window_tokens / max(window_seconds, 1e-9)
            window_tokens, window_seconds = 0, 0.0
        if grad_norm is not None:
            row["grad_norm"] = grad_norm
        row["seconds"] = dt  # this step's forward + backward + update
        row.update(out.metrics)
        evaluating = evaluate is not None and ((settings.eval_every and i % settings.eval_every == 0) or i == n)
        if evaluating:
            last_eval = dict(evaluate(step))
            row.update(last_eval)
        if on_step is not None:
            on_step(step, row)
        if evaluating or (settings.log_every and (i % settings.log_every == 0 or i == n)):
            ctx.log(**row)  # raises Stopped (Stop pressed) or Diverged
        else:
            ctx.check_stop()
    return FitResult(steps=done, last=row, last_eval=last_eval, train_seconds=train_seconds, tokens=tokens,
                     flops=flops, optimizer=optimizer, final_loss=loss_value if done else float("nan"),
                     first_eval=first_eval)
