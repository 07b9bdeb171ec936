"""Sampling settings and the draw of the next token: the bottom of serving (imports no other serving module).

GenerationConfig is what a stream asks for (max new tokens, temperature, top-p, top-k, seed, repetition penalty);
sample_next turns one row of logits into a token with those settings and the stream's own seeded generator, so an
answer does not depend on who else is in the batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from labs.core.errors import ConfigError


Message = dict  # {"role": "system" | "user" | "assistant", "content": str}


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings for one answer (max_new_tokens in tokens); validated with messages that say the range."""
    max_new_tokens: int = 128  # about 100 words; ~5 s on a 2-core laptop for the 135M model
    temperature: float = 0.7  # 0 = greedy (always the most likely token)
    top_p: float = 0.9  # nucleus sampling: keep the smallest set of tokens with this much probability
    top_k: int = 50  # 0 = off
    seed: int | None = 0  # same seed + same prompt = same answer
    repetition_penalty: float = 1.1  # >1 discourages loops, which small models fall into easily

    def __post_init__(self):
        if not 1 <= self.max_new_tokens <= 4096:
            raise ConfigError("max_new_tokens must be between 1 and 4096.")
        if not 0 <= self.temperature <= 5:
            raise ConfigError("temperature must be between 0 (greedy) and 5.")
        if not 0 < self.top_p <= 1:
            raise ConfigError("top_p must be in (0, 1]; 1 turns nucleus sampling off.")
        if self.top_k < 0:
            raise ConfigError("top_k must be 0 (off) or a positive number of tokens.")
        if self.repetition_penalty < 1:
            raise ConfigError("repetition_penalty must be at least 1 (1 = off).")


def sample_next(logits: torch.Tensor, config: GenerationConfig, generator: torch.Generator | None,
                previous: torch.Tensor | None = None) -> int:
    """Pick the next token from last-position logits (V,) with repetition penalty, temperature, top-k, top-p.

    With top-k on, only the k best tokens can be drawn, so nucleus sampling and the draw work on those k values
    (already sorted by topk) instead of sorting the whole vocabulary: Gemma's 262k entries cost ~20 ms a row."""
    logits = logits.float()
    if config.repetition_penalty != 1 and previous is not None and previous.numel():
        seen = logits[previous]
        logits[previous] = torch.where(seen > 0, seen / config.repetition_penalty, seen * config.repetition_penalty)
    if config.temperature == 0:
        return int(torch.argmax(logits))
    logits = logits / config.temperature
    if config.top_k:
        values, candidates = torch.topk(logits, min(config.top_k, logits.numel()))  # sorted, best first
        probs = torch.softmax(values, dim=-1)
    else:
        probs = torch.softmax(logits, dim=-1)
        if config.top_p < 1:
            probs, candidates = torch.sort(probs, descending=True)
        else:
            candidates = None
    if config.top_p < 1:
        keep = torch.cumsum(probs, dim=-1) - probs < config.top_p  # always keeps the top token
        probs = probs * keep
    choice = int(torch.multinomial(probs, 1, generator=generator))
    return int(candidates[choice]) if candidates is not None else choice
