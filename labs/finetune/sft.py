"""Supervised fine-tuning (instruction tuning): templates, loss masking, a training run, before/after and a task score.

The lecture's recipe: render each (instruction, input, output) example with a prompt template, train the usual
next-token loss but only on the response tokens (the prompt is masked with -100), watch train and validation
loss, and judge the result on held-out prompts. LIMA (Zhou et al. 2023) argues ~1,000 curated examples teach a
format; the bundled set (assets/sft/) teaches a "TL;DR + two bullets" answer card in a few dozen steps.

    train, held = sft.load_bundled()
    run_id = jobs.submit(SFTConfig(), functools.partial(sft.train, lm=lm))   # returns at once

Shapes: B batch, T tokens, M hidden size (model width), V vocabulary, N supervised tokens in a batch.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import json
import random
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from labs.core.errors import ConfigError
from labs.data.instructions import Example, bundled
from labs.finetune.answers import (FORMAT, SCORE_UNTIL, base_side, follows_format,  # noqa: F401 (page reads them)
                                   format_decided, greedy_batch, is_correct, prompt_text, scored_enough,
                                   stream_answer, task_score)
from labs.finetune.cost import _matmul_gflops, count_trainable, estimate, step_flops  # noqa: F401 (page, bench)
from labs.finetune.templates import (ALPACA_INPUT, ALPACA_NO_INPUT, MODES,  # noqa: F401 (the page reads them here)
                                     TEMPLATES, TokenizedSet, has_chat_template, render, token_view, tokenize)
from labs.models import LoadedModel, ModelError, adapters
from labs.runs import lessons, results
from labs.training import loop as training
from labs.training.kernels import training_kernels
from labs.training.prefix import FrozenPrefix


def load_bundled() -> tuple[list[Example], list[Example]]:
    """The project's instruction set (TL;DR answer cards): (train, held-out)."""
    return bundled()



# -- the run's config ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SFTConfig:
    """One instruction-tuning run: model, data, template, what trains (mode), optimiser; lengths in tokens."""

    model: str = "smollm2-135m-instruct"
    data: str = "bundled"  # "bundled" or "upload:<name>:<sha1 of the file>" (so a new file is a new run)
    template: str = "chat"  # the model's own template: only the answer style has to change
    train_on_prompt: bool = False  # False = the loss sees only response tokens (Alpaca/LIMA default)
    mode: str = "lora"
    lora_r: int = 8
    lora_alpha: float = 16
    # attention and MLP matrices of the top 8 blocks: the blocks below are frozen, so their states are computed once
    # per row (labs.training.prefix) and the backward pass stops at block 22 of 30. The LIMA sweep (8/16/32/64) at
    # 2 epochs and lr 4e-3 scored 0/62/75/88% (seed 0), 0/38/75/100% (seed 1), 0/62/62/88% (seed 2); 3 epochs at
    # 2e-3: 0/50/75/88% with 50% more training; 1 epoch at 6e-3 missed 80% at 64 on seed 2 (as did 5e-3 and 8e-3)
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    lora_layers: int = 8  # LoRA on the top N blocks only (0 = every block)
    last_n: int = 2
    n_examples: int = 64  # 0 = all; 16 / 64 / 256 lets students test LIMA's "few examples teach a format"
    epochs: int = 2
    batch_size: int = 4  # small batches = more updates for the same compute; a format needs updates, not precision
    lr: float = 4e-3  # LoRA tolerates ~10x the full fine-tuning rate (Hu et al. 2021 used 2e-4..5e-4 on bigger models)
    warmup: int = 3
    max_len: int = 192  # the bundled rows are ~100 tokens with the chat template
    eval_every: int = 4  # validation loss every N steps (and at the end)
    val_examples: int = 16  # held-out rows used for validation loss
    score_examples: int = 8  # held-out prompts answered before/after for the task score (0 = skip)
    score_tokens: int = 40  # new tokens per scored answer (the card's first line + a bullet fit in ~30)
    # "answer": each scored answer runs until its format and correctness are decided (the before/after table);
    # "format": only until its format is (a sweep plots nothing else; an answer that is not the card stops at once)
    score_until: str = "answer"
    precision: str = "auto"  # "auto": bf16 autocast on CPUs with AVX512-bf16/AMX (several x faster matmuls), else fp32
    seed: int = 0

    def __post_init__(self):
        if self.template not in TEMPLATES:
            raise ConfigError(f"template must be one of {list(TEMPLATES)}.")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {list(MODES)}.")
        if self.n_examples < 0:
            raise ConfigError("n_examples must be 0 (all) or a positive number of examples.")
        training.check_between("epochs", self.epochs, 1, 50)
        training.check_between("batch_size", self.batch_size, 1, 128)
        training.check_lr(self.lr, "try 1e-3 for LoRA, 5e-5 for full")
        training.check_between("max_len", self.max_len, 16, 8192, "tokens")
        if self.eval_every < 1:
            raise ConfigError("eval_every must be at least 1 step.")
        if not 1 <= self.last_n <= 64:
            raise ConfigError("last_n must be between 1 and the model's number of blocks.")
        if self.warmup < 0 or self.val_examples < 1 or self.score_examples < 0 or self.score_tokens < 1:
            raise ConfigError("warmup and score_examples must be >= 0; val_examples and score_tokens >= 1.")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError("precision must be 'auto', 'fp32' or 'bf16'.")
        if self.score_until not in SCORE_UNTIL:
            raise ConfigError(f"score_until must be one of {list(SCORE_UNTIL)}.")
        if self.lora_layers < 0:
            raise ConfigError("The number of top blocks to adapt must be 0 (all) or more.")
        if self.mode == "lora":
            self.lora()  # validates rank, alpha and targets

    def lora(self, n_layers: int = 0) -> training.LoraSettings:
        """This run's LoRA rank, alpha, target matrices and (for a model of n_layers blocks) adapted blocks."""
        return training.LoraSettings(r=self.lora_r, alpha=self.lora_alpha, targets=tuple(self.lora_targets),
                                     layers=training.top_blocks(n_layers, self.lora_layers))

    def steps(self, n_available: int) -> int:
        """Optimizer steps for the run: batches per epoch (of the n_examples used) times epochs."""
        n = min(self.n_examples or n_available, n_available)
        return math.ceil(n / self.batch_size) * self.epochs


# precision lives with the shared loop (labs.training.loop); these names stay for the page and scripts
cpu_has_bf16, autocast, uses_bf16 = training.cpu_has_bf16, training.autocast, training.uses_bf16


def data_id(name: str, raw: bytes) -> str:
    """SFTConfig.data for an uploaded file: "upload:<name>:<12 hex digits of its sha1>"."""
    return f"upload:{name}:{hashlib.sha1(raw).hexdigest()[:12]}"


# -- the loss -----------------------------------------------------------------------------------------------------

def supervised_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                    frozen: FrozenPrefix | None = None) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over supervised tokens, running the LM head only where a label exists.

    The head (M x V, a fifth of SmolLM2's weights) and the softmax over V = 49,152 are the costliest part of a
    step; prompt tokens are masked anyway, so we gather the N supervised positions first. Same value as
    training.causal_lm_loss (tested). `frozen`: the model's frozen bottom blocks replay their stored states.
    """
    body, head, softcap = training.causal_parts(model)
    ids, attention = batch["input_ids"], batch.get("attention_mask")
    with frozen.around(ids, attention) if frozen is not None else contextlib.nullcontext():
        hidden = body(input_ids=ids, attention_mask=attention).last_hidden_state  # (B, T, M)
    targets = batch["labels"][:, 1:]  # position t predicts token t+1
    mask = targets != training.IGNORE  # (B, T-1)
    logits = head(hidden[:, :-1][mask]).float()  # (N, V)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    n = int(mask.sum())
    if n == 0:
        return logits.sum() * 0.0, 0
    return F.cross_entropy(logits, targets[mask]), n


# -- the run ------------------------------------------------------------------------------------------------------

def _batches(rows: list[dict], batch_size: int, rng: random.Random) -> list[list[dict]]:
    """Shuffled batches of rows with similar lengths (less padding: dynamic padding inside each batch)."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    chunk = batch_size * 4  # sort within windows of 4 batches: keeps randomness, cuts padding
    batches = []
    for start in range(0, len(order), chunk):
        window = sorted(order[start:start + chunk], key=lambda i: len(rows[i]["input_ids"]))
        batches += [[rows[i] for i in window[j:j + batch_size]] for j in range(0, len(window), batch_size)]
    rng.shuffle(batches)
    return batches


@torch.no_grad()
def validation_loss(model: torch.nn.Module, rows: list[dict], pad_id: int, device, batch_size: int = 8,
                    precision: str = "fp32", frozen: FrozenPrefix | None = None) -> float:
    """Mean cross-entropy (nats) per supervised token over rows, in batches; the model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(rows), batch_size):
        batch = training.to_device(training.collate(rows[i:i + batch_size], pad_id), device)
        with autocast(device, precision):
            loss, n = supervised_loss(model, batch, frozen)
        total, count = total + float(loss) * n, count + n
    model.train(was_training)
    return total / max(count, 1)


pad_id = training.pad_id


def spread(examples: list, n: int) -> list:
    """n examples evenly spaced through the list (the held-out split is grouped by task family)."""
    if n >= len(examples):
        return list(examples)
    return [examples[i * len(examples) // n] for i in range(n)]


def select(examples: list[Example], n: int, seed: int) -> list[Example]:
    """The first n examples of a seeded shuffle (n = 0: all) — the dataset-size control."""
    order = list(examples)
    random.Random(seed).shuffle(order)
    return order[:n] if n else order


_BASE_VAL: dict[tuple, float] = {}  # the base model's validation loss (step 0), per model and validation rows


def train(ctx, lm: LoadedModel, train_examples: list[Example] | None = None,
          heldout: list[Example] | None = None) -> dict:
    """The SFT run (a jobs step function): logs train/val loss, lr, tokens/s each step; saves the result."""
    cfg: SFTConfig = ctx.config
    if train_examples is None or heldout is None:
        if cfg.data != "bundled":
            raise ConfigError("Uploaded data must be passed to train(); only the bundled set can be reloaded.")
        train_examples, heldout = load_bundled()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    chosen = select(train_examples, cfg.n_examples, cfg.seed)
    data = tokenize(chosen, lm.tokenizer, cfg.template, cfg.train_on_prompt, cfg.max_len)
    val = tokenize(heldout[:cfg.val_examples], lm.tokenizer, cfg.template, False, cfg.max_len)
    if not data.rows:
        raise ConfigError("No training rows left after truncation: raise max_len.")
    ctx.note(f"{len(data.rows)} training rows ({data.truncated} truncated, {data.dropped} dropped: prompt longer than "
             f"max_len), {len(val.rows)} validation rows, template '{cfg.template}'.")
    n_layers = len(training.decoder_layers(lm.model))
    model, trainable, total = training.trainable_model(lm, cfg.mode, lora=cfg.lora(n_layers) if cfg.mode == "lora" else None,
                                                       last_n=cfg.last_n, seed=cfg.seed)
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    frozen = FrozenPrefix(model, (lm.key, id(lm.model)))  # top-K LoRA / last N: the blocks below run once per row
    total_steps = math.ceil(len(data.rows) / cfg.batch_size) * cfg.epochs
    ctx.set_total(total_steps)
    pid = pad_id(lm.tokenizer)
    model.train()
    t_start = time.perf_counter()

    def batches():
        for epoch in range(1, cfg.epochs + 1):
            for rows in _batches(data.rows, cfg.batch_size, rng):
                yield epoch, training.to_device(training.collate(rows, pid), device)

    def loss_fn(item) -> training.StepOutput:
        epoch, batch = item
        captured = frozen.captured
        loss, n_sup = supervised_loss(model, batch, frozen)  # next-token loss on response tokens only
        n_tokens = int(batch["attention_mask"].sum())
        replayed = frozen.usable() and frozen.captured == captured  # every row's frozen blocks were stored
        return training.StepOutput(loss, tokens=n_tokens, metrics=dict(epoch=epoch, supervised_tokens=n_sup),
                                   flops=step_flops(lm, cfg, n_tokens, n_sup, replayed=replayed))

    def evaluate(step: int) -> dict:
        if step == 0:  # before the first update every run of a sweep is the base model: measured once per process
            key = (id(lm.model), lm.key, cfg.precision, json.dumps(val.rows, default=str))
            if key not in _BASE_VAL:
                _BASE_VAL[key] = validation_loss(model, val.rows, pid, device, precision=cfg.precision)
            return {"val_loss": _BASE_VAL[key]}
        return {"val_loss": validation_loss(model, val.rows, pid, device, precision=cfg.precision, frozen=frozen)}

    def note(step: int, row: dict) -> None:
        if "val_loss" in row:
            ctx.note(f"step {step}: train loss {row['train_loss']:.3f}, validation loss {row['val_loss']:.3f}")

    loop = training.LoopSettings(steps=total_steps, lr=cfg.lr, warmup=min(cfg.warmup, total_steps - 1),
                                 eval_every=cfg.eval_every, eval_at_start=True, precision=cfg.precision)
    with training_kernels(model, device, cfg.precision):
        fit = training.fit(ctx, params, batches(), loss_fn, loop, evaluate=evaluate, on_step=note, device=device)
    step, val_loss, train_seconds = fit.steps, fit.last_eval["val_loss"], fit.train_seconds
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    saved = save_trained(model, lm, cfg, ctx.artifacts, ctx.run_id)
    summary = {"steps": step, "final_train_loss": fit.final_loss, "final_val_loss": val_loss, "trainable": trainable,
               "total": total, "train_rows": len(data.rows), "truncated": data.truncated, "dropped": data.dropped,
               "train_seconds": train_seconds, "wall_seconds": time.perf_counter() - t_start,
               "achieved_gflops": fit.achieved_gflops, "saved": str(saved),
               "bf16_autocast": uses_bf16(device, cfg.precision),
               "peak_gflops": _matmul_gflops(uses_bf16(device, cfg.precision))}
    if cfg.score_examples:
        ctx.note("Scoring held-out prompts with the base model (adapter off) and the tuned model…")
        prompts = spread(heldout, cfg.score_examples)
        result = task_score(lm, model, prompts, cfg.template, cfg.score_tokens, cfg.score_until)
        ctx.save_json("score.json", result)
        summary.update({k: result[k] for k in ("format_before", "format_after", "correct_before", "correct_after")})
    _remember(ctx.run_id, model)
    return summary


# -- LIMA: does a small set teach the format? (claim C4) -----------------------------------------------------------

SIZE_SWEEP = (8, 16, 32, 64, 128)  # training examples per run of the dataset-size sweep (LIMA used 1,000)
SWEEP_DEFAULT = (8, 16, 32, 64)  # the page's default selection (the lessons bench runs it): 128 adds a minute


def sweep_config(config: SFTConfig, n_examples: int) -> SFTConfig:
    """One run of the dataset-size sweep: the page's settings at n_examples, its validation loss measured at the
    start and the end only (the sweep plots each run's last one; a curve in between costs ~2 s an evaluation),
    and its scored answers decoded only until their format is decided (the sweep plots the format score; the
    base model's answers, not the card, then stop after a token or two instead of 40)."""
    return replace(config, n_examples=int(n_examples), eval_every=max(config.eval_every, SWEEP_EVAL_EVERY),
                   score_until="format")


SWEEP_EVAL_EVERY = 10_000  # steps: more than any sweep run takes, so only the start and the end are evaluated


def format_verdict(summary: dict, n_examples: int):
    """C4 from one finished run's summary: labs.runs.lessons.small_set_teaches_format on its format scores."""
    if summary.get("format_after") is None:
        return lessons.not_measured("C4", "this run scored no held-out prompts: set 'Held-out prompts to score' above 0")
    return lessons.small_set_teaches_format(summary["format_before"], summary["format_after"], n_examples)


def size_points(summaries: list[tuple[int, dict]]) -> list[dict]:
    """[(training examples, run summary)] -> sorted points {examples, format_before, format_after, val_loss}."""
    return sorted(({"examples": int(n), "format_before": s.get("format_before"), "format_after": s.get("format_after"),
                    "val_loss": s.get("final_val_loss"), "seconds": s.get("wall_seconds")} for n, s in summaries),
                  key=lambda p: p["examples"])


def size_verdict(points: list[dict]):
    """C4 from a dataset-size sweep: the smallest size whose run reaches the format (≥ 80% from ≤ 20%) decides;
    every size's format score and validation loss are reported with it."""
    scored = [p for p in points if p.get("format_after") is not None]
    if not scored:
        return lessons.not_measured("C4", "no run of the sweep finished with a format score")
    first = next((p for p in scored if p["format_after"] >= 0.8), scored[-1])
    v = lessons.small_set_teaches_format(first["format_before"], first["format_after"], first["examples"])
    v.figures["sweep"] = [{k: p[k] for k in ("examples", "format_after", "val_loss")} for p in scored]
    v.figure += " (sweep: " + ", ".join(f"{p['examples']}: {p['format_after']:.0%}" for p in scored) + ")"
    if v.verdict != lessons.HOLDS:
        v.reason = f"no size up to {scored[-1]['examples']} examples reached 80% from ≤ 20%"
    return v


# -- saving and reloading the tuned model -------------------------------------------------------------------------

TRAINED_PARAMS = "trained_params.safetensors"


def save_trained(model: torch.nn.Module, lm: LoadedModel, cfg: SFTConfig, folder: Path, run_id: str) -> Path:
    """LoRA: a PEFT adapter registered for the arena / evaluation pages. Last-N / full: the changed weights."""
    if cfg.mode == "lora":
        label = f"SFT {cfg.template} · {cfg.n_examples or 'all'} ex · {cfg.epochs} ep · r{cfg.lora_r} ({run_id[-6:]})"
        return adapters.save_adapter(model, Path(folder) / "adapter", {
            "label": label, "base_model": lm.key, "page": "sft", "run_id": run_id, "template": cfg.template,
            "config": asdict(cfg)})

    names = _trained_names(lm, cfg)
    state, seen = {}, set()
    for k, v in model.state_dict().items():
        if k in names and v.data_ptr() not in seen:  # tied weights (lm_head = embed_tokens) are saved once
            seen.add(v.data_ptr())
            state[k] = v.detach().contiguous().cpu()
    path = Path(folder) / TRAINED_PARAMS
    save_file(state, str(path))
    return path


def _trained_names(lm: LoadedModel, cfg: SFTConfig) -> set[str]:
    names = set(lm.model.state_dict())
    if cfg.mode == "full":
        return names
    n_layers = len(training.decoder_layers(lm.model))
    keep = {f"layers.{i}." for i in range(n_layers - cfg.last_n, n_layers)}
    return {k for k in names if any(f in k for f in keep) or re.search(r"(^|\.)norm\.weight$", k)}


_TUNED: dict[str, torch.nn.Module] = {}  # run id -> tuned model, the last two runs (saves reloading)


def _remember(run_id: str, model: torch.nn.Module) -> None:
    _TUNED[run_id] = model
    while len(_TUNED) > 2:
        _TUNED.pop(next(iter(_TUNED)))


def take_tuned(run_id: str) -> torch.nn.Module | None:
    """The tuned model `train` just made for this run id, handed over and forgotten here (None if it is gone):
    for experiments that score a fine-tune once and drop it (labs.evaluation.run_contamination)."""
    return _TUNED.pop(run_id, None)


def tuned_model(lm: LoadedModel, run) -> torch.nn.Module:
    """The tuned model of a finished run (memory, or reloaded from its artifacts) — never the shared instance."""
    if run.id in _TUNED:
        return _TUNED[run.id]
    folder = Path(run.artifacts)
    if (folder / "adapter" / "adapter_config.json").exists():
        model = adapters.load_adapter(lm, folder / "adapter")
    elif (folder / TRAINED_PARAMS).exists():

        model = copy.deepcopy(lm.model)
        model.load_state_dict(load_file(str(folder / TRAINED_PARAMS), device=str(lm.device)), strict=False)
        model.eval()
    else:
        raise ModelError("This run saved no weights (it may have been stopped early); train again.")
    _remember(run.id, model)
    return model


# -- export -------------------------------------------------------------------------------------------------------

def export_merged(lm: LoadedModel, run) -> Path:
    """A full model folder with the update folded into the weights (LoRA: W0 + (alpha/r) B A) + the tokenizer."""
    model = tuned_model(lm, run)
    folder = Path(run.artifacts) / "merged"
    if hasattr(model, "merge_and_unload"):
        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(str(folder), safe_serialization=True)
    lm.tokenizer.save_pretrained(str(folder))
    return folder


zip_folder = adapters.zip_adapter  # a run's folder (adapter or merged model) as a zip, for download


results.register(SFTConfig, results.read_sft)
