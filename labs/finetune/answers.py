"""Before / after: the tuned model's answers next to the base model's, and how they are scored (the answer card's
format, exact answers on the task)."""
from __future__ import annotations

import contextlib
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import torch

from labs.core.errors import ConfigError
from labs.data.instructions import Example
from labs.finetune.templates import render
from labs.models import LoadedModel
from labs.serving import generation


def prompt_text(lm: LoadedModel, example: Example, template: str) -> str:
    """The rendered prompt of one example (the text the model continues), without the response."""
    return render(example, template, lm.tokenizer)[0]


def stream_answer(lm: LoadedModel, model: torch.nn.Module, prompt: str, config: generation.GenerationConfig,
                  stop=None) -> Iterator[str]:
    """Stream a continuation of an already-rendered prompt (any template) with a given model, through that
    model's batched engine (other sessions' streams share its decode steps)."""
    ids = lm.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if len(ids) + config.max_new_tokens > lm.context_length:
        raise ConfigError("The prompt is too long for the model's context; shorten it.")
    yield from generation.Stream(lm, generation.submit_ids(lm, ids, config, stop=stop, model=model))


def greedy_batch(lm: LoadedModel, model: torch.nn.Module, prompts: list[str], max_new_tokens: int,
                 done: Callable[[str], bool] | None = None) -> list[str]:
    """Greedy answers to several rendered prompts, decoded to text: all join `model`'s engine at once, so they
    share decode steps (with each other and with anyone else's streams on that model). `done(text so far)`: an
    answer leaves the batch as soon as it says True (its row is freed for the others at the next step)."""
    tok = lm.tokenizer
    config = generation.GenerationConfig(max_new_tokens=max_new_tokens, temperature=0, repetition_penalty=1.0,
                                         seed=None)
    requests = generation.submit_many(lm, [tok(p, add_special_tokens=False)["input_ids"] for p in prompts], config,
                                      model=model)

    def read(request) -> str:
        ids: list[int] = []
        for token in request.tokens():
            ids.append(token)
            if done is not None and done(tok.decode(ids, skip_special_tokens=True)):
                request.cancel()
                break
        return tok.decode(ids, skip_special_tokens=True).strip()

    if done is None:
        return [read(r) for r in requests]
    with ThreadPoolExecutor(max_workers=len(requests) or 1) as pool:  # each answer read (and ended) as it comes
        try:
            return list(pool.map(read, requests))
        finally:
            for r in requests:
                r.cancel()


FORMAT = re.compile(r"^\s*TL;DR:[^\n]*\S[^\n]*\n\s*- \S")  # the bundled set's answer card: TL;DR line, then a bullet


def follows_format(answer: str) -> bool:
    """Does the answer start like the taught card ("TL;DR: ..." then a "- " bullet)?"""
    return bool(FORMAT.match(answer))


def scored_enough(answer: str) -> bool:
    """True once more text can no longer change this answer's verdicts, so its scoring may stop there:
    is_correct reads the first line only; the format needs "TL;DR:" at the start and a "- " bullet opening the
    next non-blank line. So: the first line is complete, and either the format has already failed or the line
    after it is complete too (the card then shows its TL;DR line and first bullet). Tested: the verdicts at that
    point equal those of the whole answer."""
    text = answer.lstrip()
    if "\n" not in text:
        return False
    first, rest = text.split("\n", 1)
    if not first.startswith("TL;DR:") or not first[len("TL;DR:"):].strip():
        return True  # the format failed on the first line
    return "\n" in rest.lstrip()


def format_decided(answer: str) -> bool:
    """True once more text can no longer change this answer's format verdict (what a dataset-size sweep plots):
    at the first characters when the answer does not open with "TL;DR:", else at the first character of the next
    non-blank line (a "- " bullet or not). Correctness is not decided here. Tested like scored_enough."""
    if follows_format(answer):  # a match stays a match whatever follows
        return True
    text, head = answer.lstrip(), "TL;DR:"
    if not text.startswith(head):
        return not head.startswith(text)  # "TL;" could still become the card; "The" cannot
    if "\n" not in text:
        return False  # the TL;DR line is still being written
    first, rest = text.split("\n", 1)
    rest = rest.lstrip()
    if not first[len(head):].strip():
        return True  # an empty TL;DR line fails whatever follows
    # FORMAT needs "- " and a non-space: decided once the next line shows anything else, or "- " and one more char
    return bool(rest) and (not "- ".startswith(rest[:2]) or len(rest) >= 3)


SCORE_UNTIL = {"answer": scored_enough, "format": format_decided}  # how far each scored answer is decoded


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def is_correct(answer: str, reference: str) -> bool:
    """The reference's short answer (its TL;DR line, else its first line) appears in the answer's first line."""
    ref = reference.strip().splitlines()[0] if reference.strip() else ""
    ref = ref.removeprefix("TL;DR:").strip()
    first = answer.strip().splitlines()[0] if answer.strip() else ""
    return bool(_norm(ref)) and _norm(ref) in _norm(first)


_BEFORE: dict[tuple, list[str]] = {}  # (model, new tokens, prompts, until) -> the base model's greedy answers


def task_score(lm: LoadedModel, tuned: torch.nn.Module, examples: list[Example], template: str,
               max_new_tokens: int = 40, until: str = "answer") -> dict:
    """Held-out prompts answered greedily by the base (adapter off) and the tuned model, scored automatically.

    until="answer": each answer runs until its format and correctness are decided (scored_enough), as the
    before/after table shows them; "format": only until its format is (format_decided), and correctness is
    not scored (None): what a dataset-size sweep plots, at a few tokens for an answer that is not the card."""
    if until not in SCORE_UNTIL:
        raise ConfigError(f"until must be one of {list(SCORE_UNTIL)}.")
    done = SCORE_UNTIL[until]
    prompts = [prompt_text(lm, ex, template) for ex in examples]
    key = (id(lm.model), lm.key, max_new_tokens, tuple(prompts), until)
    before = _BEFORE.get(key)
    if before is None:  # the base model's answers: the same for every run of a sweep, written once per process
        with base_side(lm, tuned) as base:
            before = greedy_batch(lm, base, prompts, max_new_tokens, done=done)
        if len(_BEFORE) > 64:
            _BEFORE.clear()
        _BEFORE[key] = before
    after = greedy_batch(lm, tuned, prompts, max_new_tokens, done=done)
    whole = until == "answer"  # correctness needs the whole first line; a format-only cut may not have it
    rows = [{"instruction": ex.instruction, "input": ex.input, "reference": ex.output, "before": b, "after": a,
             "format_before": follows_format(b), "format_after": follows_format(a),
             "correct_before": is_correct(b, ex.output) if whole else None,
             "correct_after": is_correct(a, ex.output) if whole else None}
            for ex, b, a in zip(examples, before, after)]
    n = max(len(rows), 1)
    scored = ("format_before", "format_after") + (("correct_before", "correct_after") if whole else ())
    return {"rows": rows, "correct_before": None, "correct_after": None,
            **{k: sum(r[k] for r in rows) / n for k in scored}}


@contextlib.contextmanager
def base_side(lm: LoadedModel, tuned: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The "before" model: the tuned LoRA copy with its adapter disabled (PEFT), else the shared base model.

    Both are the untouched base weights; tests check the outputs equal lm.model's exactly.
    """
    if hasattr(tuned, "disable_adapter"):
        with tuned.disable_adapter():
            yield tuned
    else:
        yield lm.model
