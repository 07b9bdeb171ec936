"""Generative evaluation: the model writes an answer, scored by exact match, contains and regex."""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Sequence

from labs import models
from labs.core.errors import ConfigError
from labs.evaluation.scoring import model_for
from labs.runs import results
from labs.serving import endpoints as backends
from labs.serving.generation import GenerationConfig


# ---------------------------------------------------------------------------------------------------------------
# Generative evaluation: exact match / contains / regex (SQuAD's answer normalisation, Rajpurkar et al. 2016)
# ---------------------------------------------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and the articles a/an/the, squeeze spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def extract(output: str, extract_regex: str = "") -> str:
    """lm-eval's regex filter: the first capture group (or whole match) of extract_regex, else the first line."""
    if extract_regex:
        m = re.search(extract_regex, output, flags=re.IGNORECASE | re.DOTALL)
        if m:
            return m.group(1) if m.groups() else m.group(0)
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""


def exact_match(prediction: str, answer: str) -> bool:
    """The normalised prediction equals the normalised answer (SQuAD-style: case, punctuation, articles)."""
    return normalize_answer(prediction) == normalize_answer(answer)


def contains(output: str, answer: str) -> bool:
    """The normalised answer appears as whole words in the normalised output."""
    return f" {normalize_answer(answer)} " in f" {normalize_answer(output)} "


def regex_match(output: str, answer: str, pattern: str = "") -> bool:
    """The output matches `pattern` (default: the answer as a whole word), case-insensitive."""
    pattern = pattern or rf"\b{re.escape(answer)}\b"
    return re.search(pattern, output, flags=re.IGNORECASE) is not None


def score_generation(output: str, row: dict, extract_regex: str = "") -> dict:
    """One generated answer against its row: the extracted prediction and 0/1 exact_match, contains and
    regex scores."""
    prediction = extract(output, extract_regex)
    return {"prediction": prediction, "exact_match": float(exact_match(prediction, row["answer"])),
            "contains": float(contains(output, row["answer"])),
            "regex": float(regex_match(output, row["answer"], row.get("pattern", "")))}


@dataclass(frozen=True)
class GenerativeConfig:
    """A generative evaluation run: a model (and adapter) answers each question greedily in up to
    max_new_tokens tokens; answers are scored by exact match, contains and regex."""
    model_key: str = models.DEFAULT_CHAT_MODEL
    adapter: str = ""
    data_digest: str = "bundled"
    max_new_tokens: int = 24  # short answers; ~1 s each for the 135M model on 2 cores
    extract_regex: str = ""  # e.g. 'answer is (\\w+)'; empty = the output's first line
    seed: int = 0

    def __post_init__(self):
        models.spec(self.model_key)
        if not 1 <= self.max_new_tokens <= 256:
            raise ConfigError("max_new_tokens must be between 1 and 256.")
        if self.extract_regex:
            try:
                re.compile(self.extract_regex)
            except re.error as exc:
                raise ConfigError(f"The extraction regex is invalid ({exc}).") from None


def run_generative(ctx, lm, rows: Sequence[dict]) -> dict:
    """Step function: greedy answers to each prompt, scored three ways. `lm`: a local model or an endpoint."""
    cfg: GenerativeConfig = ctx.config
    if backends.is_endpoint(lm):
        if cfg.adapter:
            backends.require_local(lm, "given an adapter")
        model = None
    else:
        model = model_for(lm, cfg.adapter)
        model = None if model is lm.model else model
    gen = GenerationConfig(max_new_tokens=cfg.max_new_tokens, temperature=0.0, seed=cfg.seed, repetition_penalty=1.0)
    ctx.set_total(len(rows))
    out = []
    answers = backends.generate_many(lm, [row["prompt"] for row in rows], gen, model=model)
    try:
        for i, (row, text) in enumerate(zip(rows, answers), 1):  # all prompts decode together, in one batch
            out.append(dict(row, output=text, **score_generation(text, row, cfg.extract_regex)))
            n = len(out)
            ctx.log(step=i, exact_match=sum(r["exact_match"] for r in out) / n,
                    contains=sum(r["contains"] for r in out) / n, regex=sum(r["regex"] for r in out) / n)
    finally:
        answers.close()  # Stop: the rest leave the batch
        ctx.save_json("generations.json", out)
    n = len(out)
    return {m: sum(r[m] for r in out) / n for m in ("exact_match", "contains", "regex")}


results.register(GenerativeConfig, results.evaluation_reader("generative", "generations.json"))
