"""Diversity of sampled answers against temperature: distinct-n, n-gram self-overlap and embedding self-similarity."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from labs import models
from labs.core.errors import ConfigError, EmptyPrompt
from labs.runs import results
from labs.serving.endpoints import generate_many
from labs.serving.generation import GenerationConfig


# ---------------------------------------------------------------------------------------------------------------
# Diversity (distinct-n: Li et al. 2016; self-similarity in the spirit of Self-BLEU, Zhu et al. 2018)
# ---------------------------------------------------------------------------------------------------------------
def words(text: str) -> list[str]:
    """Lower-cased word tokens (\\w+) of a text."""
    return re.findall(r"\w+", text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The consecutive n-tuples of a token list."""
    return [tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / all n-grams, pooled over the samples (1 = nothing repeated, ->0 = the same text again)."""
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_overlap(texts: Sequence[str], n: int = 2) -> float:
    """Mean pairwise Jaccard similarity of the samples' n-gram sets (1 = identical samples)."""
    sets = [set(ngrams(words(t), n)) for t in texts]
    sims = [len(a & b) / len(a | b) for i, a in enumerate(sets) for b in sets[i + 1:] if a | b]
    return sum(sims) / len(sims) if sims else 1.0


def self_similarity(embeddings) -> float:
    """Mean pairwise cosine similarity of sentence embeddings (rows), excluding each sample with itself."""
    e = torch.as_tensor(embeddings, dtype=torch.float32)
    n = e.shape[0]
    if n < 2:
        return 1.0
    e = torch.nn.functional.normalize(e, dim=-1)
    sim = e @ e.T  # (n, n)
    return float((sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))


@dataclass(frozen=True)
class DiversityConfig:
    """A diversity run: `samples` answers to one prompt at each temperature, then distinct-n and
    self-similarity per temperature."""
    model_key: str = models.DEFAULT_CHAT_MODEL
    prompt: str = "Write one sentence about the sea."
    temperatures: tuple[float, ...] = (0.2, 0.7, 1.0, 1.5)
    samples: int = 5  # per temperature
    max_new_tokens: int = 30
    seed: int = 0

    def __post_init__(self):
        models.spec(self.model_key)
        if not self.prompt.strip():
            raise EmptyPrompt()
        if not self.temperatures or any(not 0 < t <= 3 for t in self.temperatures):
            raise ConfigError("Pick at least one temperature, each in (0, 3].")
        if not 2 <= self.samples <= 20:
            raise ConfigError("samples must be between 2 and 20 (similarity needs at least two).")
        if not 4 <= self.max_new_tokens <= 200:
            raise ConfigError("max_new_tokens must be between 4 and 200.")


def run_diversity(ctx, lm, embed: Callable[[list[str]], object] | None = None) -> dict:
    """`lm`: a local model (samples of one temperature decode in one batch) or an endpoint (one after another)."""
    cfg: DiversityConfig = ctx.config
    temps = sorted(cfg.temperatures)
    ctx.set_total(len(temps) * cfg.samples)
    table, samples, step = [], {}, 0
    try:
        for t in temps:
            texts = []
            gens = [GenerationConfig(max_new_tokens=cfg.max_new_tokens, temperature=t, top_p=1.0, top_k=0,
                                     seed=cfg.seed * 1000 + j, repetition_penalty=1.0) for j in range(cfg.samples)]
            # every sample of one temperature decodes in one batch; each keeps its own seed
            for j, text in enumerate(generate_many(lm, [cfg.prompt] * cfg.samples, gens)):
                texts.append(text)
                step += 1
                if j < cfg.samples - 1:
                    ctx.log(step=step, temperature=t)
            row = {"temperature": t, "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
                   "self_overlap": self_overlap(texts, 2)}
            if embed is not None:
                row["self_similarity"] = self_similarity(embed(texts))
            table.append(row)
            ctx.log(step=step, **row)  # the live chart gets one point per temperature
            samples[str(t)] = texts
            ctx.note(f"T={t}: distinct-2 {row['distinct_2']:.2f}")
    finally:
        ctx.save_json("diversity.json", {"table": table, "samples": samples})
    return {"rows": len(table)}


results.register(DiversityConfig, results.evaluation_reader("diversity", "diversity.json"))
