"""Shared training pieces: what to train (full / last-N / LoRA via PEFT), tokenising with loss masks,
batching, sequence log-probabilities and the causal-LM loss. Used by the SFT, DPO, LoRA and evaluation labs.

Shapes: B batch, T time (tokens), V vocabulary.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from labs.models import LoadedModel

IGNORE = -100  # label id that the loss skips (PyTorch cross_entropy's ignore_index)

LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


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

    def __post_init__(self):
        if not 1 <= self.r <= 1024:
            raise ValueError("LoRA rank r must be between 1 and 1024.")
        if self.alpha <= 0:
            raise ValueError("LoRA alpha must be positive (scaling = alpha / r).")
        if not 0 <= self.dropout < 1:
            raise ValueError("LoRA dropout must be in [0, 1).")
        if not self.targets:
            raise ValueError("Pick at least one target matrix for LoRA (e.g. q_proj and v_proj).")
        # The names depend on the architecture (models.LORA_TARGETS); PEFT says which one a given model lacks.
        from labs.models import LORA_TARGETS

        known = {t for attention, mlp in LORA_TARGETS.values() for t in attention + mlp}
        unknown = [t for t in self.targets if t not in known]
        if unknown:
            raise ValueError(f"Unknown LoRA targets {unknown}; Llama-style models use {list(LLAMA_TARGETS)} "
                             f"(other architectures: {sorted(known - set(LLAMA_TARGETS))}).")

    def peft_config(self):
        from peft import LoraConfig, TaskType

        return LoraConfig(task_type=TaskType.CAUSAL_LM, r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.targets), use_rslora=self.use_rslora, use_dora=self.use_dora,
                          init_lora_weights=self.init_lora_weights)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def decoder_layers(model: torch.nn.Module):
    inner = getattr(model, "model", model)
    inner = getattr(inner, "language_model", inner)
    return inner.layers


def trainable_model(lm: LoadedModel, mode: str = "lora", lora: LoraSettings | None = None, last_n: int = 2,
                    seed: int = 0) -> tuple[torch.nn.Module, int, int]:
    """A trainable copy of the shared model (never the shared instance itself).

    mode "lora": PEFT LoRA adapters on a copy (the base weights stay frozen);
    mode "last_n": only the last `last_n` decoder layers and the final norm train;
    mode "full": every weight trains.
    Returns (model, trainable parameters, total parameters).
    """
    if mode not in ("lora", "full", "last_n"):
        raise ValueError("mode must be 'lora', 'full' or 'last_n'.")
    torch.manual_seed(seed)
    model = copy.deepcopy(lm.model).float() if lm.model.dtype == torch.float16 else copy.deepcopy(lm.model)
    model.train()
    for p in model.parameters():
        p.requires_grad_(mode == "full")
    if mode == "last_n":
        layers = decoder_layers(model)
        if not 1 <= last_n <= len(layers):
            raise ValueError(f"last_n must be between 1 and {len(layers)} (the model's number of layers).")
        for layer in list(layers)[-last_n:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        inner = getattr(model, "model", model)
        if hasattr(inner, "norm"):
            for p in inner.norm.parameters():
                p.requires_grad_(True)
    elif mode == "lora":
        from peft import get_peft_model

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
        raise ValueError("No examples to batch.")
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


def sequence_logprobs(model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor,
                      attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over labelled tokens of log p(token | prefix), and the number of such tokens, per sequence (B,)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, V)
    logp, mask = token_logprobs(logits, labels)
    return logp.sum(-1), mask.sum(-1)


def causal_lm_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over the trained (unmasked) tokens, and how many tokens that was."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).logits
    logp, mask = token_logprobs(logits, batch["labels"])
    n = int(mask.sum())
    return -(logp.sum() / max(n, 1)), n


def to_device(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


@dataclass
class Schedule:
    """Linear warm-up then cosine decay to 10% (a common default for short fine-tunes)."""

    lr: float
    total_steps: int
    warmup: int = 0
    history: list[float] = field(default_factory=list)

    def at(self, step: int) -> float:
        import math

        if self.warmup and step <= self.warmup:
            return self.lr * step / self.warmup
        progress = (step - self.warmup) / max(1, self.total_steps - self.warmup)
        return self.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
