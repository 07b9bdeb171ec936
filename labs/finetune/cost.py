"""What an instruction-tuning run will cost before it starts: trainable parameters, memory, FLOPs per step and time
(labs.finetune.sft re-exports these for the page and the benches). `config` is always an sft.SFTConfig; it is not
imported here, as sft imports this module."""
from __future__ import annotations

import math

import torch

from labs.core import hardware
from labs.core.errors import ConfigError
from labs.finetune.templates import TokenizedSet
from labs.models import LoadedModel
from labs.training import loop as training


def count_trainable(lm: LoadedModel, config) -> tuple[int, int]:
    """(trainable, total) parameters of the run, computed from the model's shapes without copying it."""
    model = lm.model
    total = sum(p.numel() for p in model.parameters())
    if config.mode == "full":
        return total, total
    if config.mode == "last_n":
        layers = list(training.decoder_layers(model))
        if config.last_n > len(layers):
            raise ConfigError(f"last_n must be at most {len(layers)}, the model's number of blocks.")
        inner = getattr(model, "model", model)
        norm = sum(p.numel() for p in inner.norm.parameters()) if hasattr(inner, "norm") else 0
        return sum(p.numel() for layer in layers[-config.last_n:] for p in layer.parameters()) + norm, total
    layers = list(training.decoder_layers(model))
    adapted = set(config.lora(len(layers)).layers) or set(range(len(layers)))
    extra = 0
    for i in adapted:  # LoRA: A (r x in) + B (out x r) per targeted matrix of each adapted block
        for name, module in layers[i].named_modules():
            if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in config.lora_targets:
                extra += config.lora_r * (module.in_features + module.out_features)
    return extra, total + extra


def _matmul_gflops(bf16: bool = False) -> float:
    """This machine's measured matmul rate (measured once per process, per precision)."""
    if bf16 not in _PEAK:
        _PEAK[bf16] = hardware.matmul_gflops(n=1024, repeats=5, dtype=torch.bfloat16 if bf16 else None)
    return _PEAK[bf16]


_PEAK: dict[bool, float] = {}


def frozen_blocks(lm: LoadedModel, config) -> int:
    """Blocks below the lowest trained one (LoRA on the top N, or last N): labs.training.prefix runs them once per
    row, so they cost a forward pass per row for the whole run rather than per step."""
    L = lm.model.config.num_hidden_layers
    if config.mode == "lora":
        top = training.top_blocks(L, config.lora_layers)
        return top[0] if top else 0
    if config.mode == "last_n":
        return L - min(config.last_n, L)
    return 0


def step_flops(lm: LoadedModel, config, tokens: int, supervised: int, replayed: bool = False) -> float:
    """FLOPs of one step (forward + backward) — the 6N-per-token rule (Kaplan et al. 2020) split by what trains.

    forward 2N per token through the blocks (replayed: only through the blocks above the frozen ones, whose states
    labs.training.prefix stores); backward 2N for activation gradients down to the lowest trainable block, plus
    2 x (trainable weights) per token for weight gradients; the LM head runs only on supervised tokens.
    """
    cfg = lm.model.config
    M, V, L = cfg.hidden_size, cfg.vocab_size, cfg.num_hidden_layers
    head = M * V
    body = sum(p.numel() for p in training.decoder_layers(lm.model).parameters())
    per_block = body / L
    trainable, _ = count_trainable(lm, config)
    depth = L - frozen_blocks(lm, config) if config.mode != "full" else L  # blocks the gradient flows through
    fwd = 2 * (per_block * depth if replayed else body) * tokens + 2 * head * supervised
    bwd = 2 * per_block * depth * tokens + 2 * head * supervised + 2 * trainable * tokens
    return float(fwd + bwd)


def estimate(lm: LoadedModel, config, data: TokenizedSet) -> dict:
    """Trainable share, memory and time per step before starting (FLOPs at the measured matmul rate)."""
    trainable, total = count_trainable(lm, config)
    n_rows = max(len(data.rows), 1)
    tokens = data.tokens / n_rows * config.batch_size
    supervised = data.supervised / n_rows * config.batch_size
    bytes_w = torch.finfo(lm.dtype).bits // 8
    cfg = lm.model.config
    frozen = frozen_blocks(lm, config)
    depth = cfg.num_hidden_layers - frozen
    inter = getattr(cfg, "intermediate_size", 4 * cfg.hidden_size)
    # saved activations per token per block that backprop needs: ~6 M (attention in/out, norms) + 4 I (MLP)
    activations = tokens * depth * (6 * cfg.hidden_size + 4 * inter) * 4
    memory = {"weights": total * bytes_w, "gradients": trainable * 4, "adam_state": trainable * 8,
              "activations": activations, "lm_head_logits": supervised * cfg.vocab_size * 4 * 2}
    peak = _matmul_gflops(training.uses_bf16(lm.device, config.precision)) * 1e9
    steps = math.ceil(len(data.rows) / config.batch_size) * config.epochs
    # every step replays the frozen blocks' stored states; each row runs through those blocks once in the run
    per_block = sum(p.numel() for p in training.decoder_layers(lm.model).parameters()) / cfg.num_hidden_layers
    flops_total = (steps * step_flops(lm, config, tokens, supervised, replayed=frozen > 0)
                   + 2 * per_block * frozen * data.tokens)
    # a training step's matmuls are smaller than the benchmark's; about half the peak is typical (runs report the
    # measured ratio as achieved GFLOP/s)
    seconds_total = flops_total / (peak * 0.5)
    return {"trainable": trainable, "total": total, "trainable_pct": 100 * trainable / total,
            "memory_bytes": memory, "memory_total_mb": sum(memory.values()) / 2**20,
            "tokens_per_step": tokens, "flops_per_step": flops_total / max(steps, 1), "peak_gflops": peak / 1e9,
            "seconds_per_step": seconds_total / max(steps, 1), "bf16": training.uses_bf16(lm.device, config.precision),
            "steps": steps, "seconds_total": seconds_total}
