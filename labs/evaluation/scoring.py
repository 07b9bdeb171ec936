"""Multiple-choice scoring by log-likelihood: the prompts, each choice's log-likelihood, the metrics, one scored item.

Multiple choice is scored the way lm-evaluation-harness (Gao et al., EleutherAI) does it: the model never writes
an answer; we ask it how likely each choice is as a continuation of the prompt,

    loglik(choice) = sum_t log p(choice_t | prompt, choice_<t)          (one number per choice)
    acc      = 1[argmax_i loglik_i == gold]
    acc_norm = 1[argmax_i loglik_i / len(choice_i in characters) == gold]   (so long endings are not punished)
    stderr   = sample std of the 0/1 scores / sqrt(n)

The prompt's forward pass is shared by all choices (its KV cache is computed once and repeated for the batch of
choices), which is what makes a 4-choice item cost about one forward pass instead of four.
`loglikelihood_naive` is the slow, obviously-correct twin used by the tests.
"""
from __future__ import annotations

import contextlib
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Sequence

import torch

from labs import models
from labs.core.errors import ConfigError
from labs.data.benchmarks import LETTERS, MCItem, shot_pool, subject_name
from labs.models import adapters
from labs.training.loop import causal_parts, pad_id


MMLU_DESCRIPTION = "The following are multiple choice questions (with answers) about {subject}.\n\n"
CHOICE_FORMATS = ("letters", "text")


# ---------------------------------------------------------------------------------------------------------------
# Prompts (MMLU, Hendrycks et al. 2021; lm-evaluation-harness's mmlu task; OLMES's cloze formulation)
# ---------------------------------------------------------------------------------------------------------------
def format_question(item: MCItem, choice_format: str = "letters") -> str:
    """The text of one question up to 'Answer:'. letters = MMLU's lettered options; text = cloze (no options)."""
    if item.style == "continuation":
        return item.prompt
    if choice_format == "letters":
        options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, item.choices))
        return f"{item.prompt.strip()}{options}\nAnswer:"
    return f"Question: {item.prompt.strip()}\nAnswer:"


def choice_strings(item: MCItem, choice_format: str = "letters") -> list[str]:
    """What is scored for each choice (lm-eval's doc_to_choice): 'A'..'D', or the choice's own words."""
    if item.style == "mmlu" and choice_format == "letters":
        return list(LETTERS[: len(item.choices)])
    return list(item.choices)


def build_context(item: MCItem, shots: Sequence[MCItem] = (), choice_format: str = "letters") -> str:
    """k-shot prompt: MMLU's description line, k solved examples separated by blank lines, then the question."""
    head = MMLU_DESCRIPTION.format(subject=subject_name(item.subject)) if item.style == "mmlu" else ""
    solved = "".join(f"{format_question(s, choice_format)} {choice_strings(s, choice_format)[s.answer]}\n\n"
                     for s in shots)
    return head + solved + format_question(item, choice_format)


def pick_shots(item: MCItem, pool: Sequence[MCItem], k: int, seed: int = 0) -> list[MCItem]:
    """k examples for a k-shot prompt: the first k of the same subject from the dev split (MMLU's rule); if the
    pool is short of that subject, a seeded sample of the rest. The item itself is never its own example."""
    if k <= 0:
        return []
    others = [p for p in pool if p.id != item.id and p.prompt != item.prompt]
    same = [p for p in others if p.subject == item.subject][:k]
    if len(same) < k:
        rest = [p for p in others if p not in same]
        random.Random(f"{seed}-{item.id}").shuffle(rest)
        same += rest[: k - len(same)]
    return same


def few_shot_pool(items: Sequence[MCItem], dev: Sequence[MCItem], k: int) -> list[MCItem]:
    """The dev items k-shot examples are drawn from: a separate split, minus any question that is also scored
    (lm-evaluation-harness's fewshot_split; a scored item shown as a solved example would leak its answer).
    Raises ValueError when k > 0 and no dev item is left."""
    pool, _ = shot_pool(list(items), list(dev))
    if k > 0 and not pool:
        raise ConfigError(f"{k}-shot prompts need solved examples from a separate dev set, and none is left: "
                         "upload a dev file next to the test file, or set k to 0.")
    return pool


# ---------------------------------------------------------------------------------------------------------------
# Log-likelihood of a continuation
# ---------------------------------------------------------------------------------------------------------------
def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text)["input_ids"])


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation) as lm-evaluation-harness makes them (HFLM._encode_pair):
    trailing spaces of the context move to the continuation, the whole string is tokenised once, and the
    continuation is whatever the whole has beyond the context's tokens. So ' Paris' keeps its leading-space token,
    exactly as the model would have produced it after the prompt."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = _ids(tokenizer, context + continuation)
    ctx = _ids(tokenizer, context)
    if not ctx or not context:  # nothing to condition on: start from the end-of-text token, as the harness does
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return [prefix], _ids(tokenizer, continuation)
    return ctx, whole[len(ctx):]


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def loglikelihood_naive(model: torch.nn.Module, context_ids: Sequence[int], continuation_ids: Sequence[int]) -> tuple[float, bool]:
    """One forward pass over context+continuation; sum of the continuation tokens' log-probs, and whether each
    was the greedy (argmax) token. The reference the fast path is tested against."""
    ids = torch.tensor([list(context_ids) + list(continuation_ids)], device=_device(model))  # (1, T)
    logits = model(input_ids=ids).logits[0, :-1].float()  # (T-1, V): position t predicts token t+1
    logp = torch.log_softmax(logits[-len(continuation_ids):], dim=-1)  # (Tc, V): Tc continuation tokens
    target = torch.tensor(list(continuation_ids), device=logp.device)
    chosen = logp.gather(1, target[:, None])[:, 0]
    return float(chosen.sum()), bool((logp.argmax(-1) == target).all())


@torch.inference_mode()
def score_choices(model: torch.nn.Module, context_ids: Sequence[int], continuations: Sequence[Sequence[int]],
                  pad_id: int = 0) -> list[tuple[float, bool]]:
    """loglik and is-greedy of every continuation, sharing the context's forward pass (prefix caching).

    1. context (1, T) -> logits at its last position score every continuation's first token, and the KV cache.
    2. the cache is repeated for the N choices; their remaining tokens run as one right-padded batch (N, Tc),
       Tc = the longest continuation's tokens after its first.
    """
    device = _device(model)
    ctx = torch.tensor([list(context_ids)], device=device)  # (1, T)
    out = model(input_ids=ctx, use_cache=True, logits_to_keep=1)
    first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # (V,)
    scores = [[float(first[c[0]]), int(first.argmax()) == c[0]] for c in continuations]
    longest = max(len(c) for c in continuations)
    if longest > 1:
        n = len(continuations)
        cache = out.cache  # transformers 5 (was past_key_values)
        cache.batch_repeat_interleave(n)
        rest = torch.full((n, longest - 1), pad_id, dtype=torch.long, device=device)  # (N, Tc)
        mask = torch.zeros((n, ctx.shape[1] + longest - 1), dtype=torch.long, device=device)  # (N, T+Tc)
        mask[:, : ctx.shape[1]] = 1
        for i, c in enumerate(continuations):
            rest[i, : len(c) - 1] = torch.tensor(list(c[:-1]), device=device)
            mask[i, ctx.shape[1]: ctx.shape[1] + len(c) - 1] = 1
        logp = torch.log_softmax(model(input_ids=rest, attention_mask=mask, cache=cache).logits.float(), dim=-1)  # (N, Tc, V)
        for i, c in enumerate(continuations):
            if len(c) > 1:
                target = torch.tensor(list(c[1:]), device=device)
                rows = logp[i, : len(c) - 1]
                scores[i][0] += float(rows.gather(1, target[:, None]).sum())
                scores[i][1] = scores[i][1] and bool((rows.argmax(-1) == target).all())
    return [(s, g) for s, g in scores]


# ---------------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------------
def argmax(values: Sequence[float]) -> int:
    """Index of the largest value (the first one on a tie)."""
    return max(range(len(values)), key=lambda i: values[i])


def predictions(logliks: Sequence[float], choices: Sequence[str]) -> tuple[int, int]:
    """(acc prediction, acc_norm prediction): argmax of loglik, and of loglik per character of the choice."""
    norm = [ll / max(len(c), 1) for ll, c in zip(logliks, choices)]
    return argmax(logliks), argmax(norm)


def mean_stderr(values: Sequence[float]) -> float:
    """Standard error of a mean: sample standard deviation (n-1) / sqrt(n), as lm-eval's mean_stderr."""
    n = len(values)
    if n < 2:
        return float("nan")
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


def acc_norm_can_differ(choice_lists: Sequence[Sequence[str]]) -> bool:
    """Whether acc_norm can ever differ from acc: only when some item's scored choices differ in length.
    Dividing every choice's loglik by the same length keeps the argmax, so for MMLU's single letters ' A'..' D'
    acc_norm is acc by construction (lm-evaluation-harness's mmlu task reports acc alone for that reason)."""
    return any(len({len(c) for c in choices}) > 1 for choices in choice_lists)


SAME_ANSWER_SHARE = 0.8  # a model that picks one position this often is mostly measuring that position's gold share


def answer_distribution(results: Sequence["ItemResult"]) -> dict:
    """How often the model picked each answer position (acc's argmax) vs how often each is right, and chance.

    A model that always answers 'A' scores exactly the share of items whose answer is A: the accuracy is then a
    property of the answer key, not of the model. `same_answer` is set when one position takes at least
    SAME_ANSWER_SHARE of the picks."""
    if not results:
        return {}
    width = max(len(r.choices) for r in results)
    labels = [LETTERS[i] if i < len(LETTERS) else str(i + 1) for i in range(width)]
    n = len(results)
    picked = Counter(r.pred for r in results)
    gold = Counter(r.answer for r in results)
    top, top_count = picked.most_common(1)[0]
    return {"labels": labels, "predicted": [picked[i] / n for i in range(width)],
            "gold": [gold[i] / n for i in range(width)], "chance": sum(1 / len(r.choices) for r in results) / n,
            "top": labels[top], "top_share": top_count / n, "top_gold_share": gold[top] / n,
            "same_answer": top_count / n >= SAME_ANSWER_SHARE, "n": n}


def same_answer_text(dist: dict) -> str:
    """A plain sentence for a model that (nearly) always picks one position; '' when it does not."""
    if not dist or not dist["same_answer"]:
        return ""
    how = "always" if dist["top_share"] == 1 else f"for {dist['top_share']:.0%} of the items"
    return (f"The model answered {dist['top']} {how}. A model that always says {dist['top']} scores exactly the "
            f"share of items whose answer is {dist['top']} ({dist['top_gold_share']:.0%} here): this accuracy "
            "measures the answer key, not knowledge. Compare with the cloze format (the answer's words), or look "
            "at a stronger model.")


@dataclass
class ItemResult:
    """One multiple-choice item as scored: the context the model saw, each choice's summed log-likelihood
    (nats) and whether it was the greedy continuation, and the picks by acc and acc_norm."""
    id: str
    subject: str
    prompt: str  # the full k-shot context the model saw
    choices: list[str]  # what was scored ('A'.. or the choice text)
    choice_texts: list[str]  # the choices' words, for display
    answer: int
    loglik: list[float]
    greedy: list[bool]
    pred: int
    pred_norm: int

    @property
    def acc(self) -> float:
        """1.0 when the highest-loglik choice is the answer, else 0.0."""
        return float(self.pred == self.answer)

    @property
    def acc_norm(self) -> float:
        """1.0 when the highest loglik-per-character choice is the answer, else 0.0."""
        return float(self.pred_norm == self.answer)


def score_item(model: torch.nn.Module, tokenizer, item: MCItem, shots: Sequence[MCItem] = (),
               choice_format: str = "letters", lock=None) -> ItemResult:
    """Score one item k-shot (lm-evaluation-harness style): every choice's loglik given the context, in one
    shared-prefix pass; `lock` serialises use of a shared model."""
    context = build_context(item, shots, choice_format)
    choices = choice_strings(item, choice_format)
    pairs = [encode_pair(tokenizer, context, " " + c) for c in choices]  # lm-eval's target_delimiter " "
    ctx_ids = pairs[0][0]
    pad = pad_id(tokenizer)  # padded positions are masked; EOS like every other lab
    if lock is not None:
        with lock:
            scored = score_choices(model, ctx_ids, [p[1] for p in pairs], pad)
    else:
        scored = score_choices(model, ctx_ids, [p[1] for p in pairs], pad)
    logliks = [s for s, _ in scored]
    pred, pred_norm = predictions(logliks, choices)
    return ItemResult(item.id, item.subject, context, choices, list(item.choices), item.answer, logliks,
                      [g for _, g in scored], pred, pred_norm)


def score_items(model: torch.nn.Module, tokenizer, items: Sequence[MCItem], choice_format: str = "letters",
                batch_size: int = 16, frozen=None) -> list[ItemResult]:
    """Score many zero-shot items, several contexts per forward pass: score_item's numbers, batched.

    When every choice of an item is one token (MMLU's ' A'..' D'), the context's last position scores them all, so
    B contexts right-padded into one (B, T) batch cost one pass; the output layer runs only at each row's last real
    position. Items with longer choices go through score_item. `frozen` (training.prefix.FrozenPrefix): a tuned
    model whose bottom blocks are the base model's replays their stored states."""
    results: dict[int, ItemResult] = {}
    single = []
    for i, item in enumerate(items):
        context, choices = build_context(item, (), choice_format), choice_strings(item, choice_format)
        pairs = [encode_pair(tokenizer, context, " " + c) for c in choices]
        if all(len(cont) == 1 for _, cont in pairs):
            single.append((i, item, context, choices, pairs[0][0], [cont[0] for _, cont in pairs]))
        else:
            results[i] = score_item(model, tokenizer, item, (), choice_format)
    device, pad = _device(model), pad_id(tokenizer)
    for start in range(0, len(single), batch_size):
        chunk = single[start:start + batch_size]
        lengths = [len(c[4]) for c in chunk]
        ids = torch.full((len(chunk), max(lengths)), pad, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for row, c in enumerate(chunk):
            ids[row, :lengths[row]] = torch.tensor(c[4], device=device)
            mask[row, :lengths[row]] = 1
        with torch.no_grad():
            body, head, softcap = causal_parts(model)
            with frozen.around(ids, mask) if frozen is not None else contextlib.nullcontext():
                hidden = body(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state  # (B, T, M)
            last = hidden[torch.arange(len(chunk), device=device), torch.tensor(lengths, device=device) - 1]
            logits = head(last).float()
            if softcap:
                logits = torch.tanh(logits / softcap) * softcap
            logp = torch.log_softmax(logits, dim=-1)  # (B, V)
        for row, (i, item, context, choices, _, tokens) in enumerate(chunk):
            logliks = [float(logp[row, t]) for t in tokens]
            greedy = [int(logp[row].argmax()) == t for t in tokens]
            pred, pred_norm = predictions(logliks, choices)
            results[i] = ItemResult(item.id, item.subject, context, choices, list(item.choices), item.answer,
                                    logliks, greedy, pred, pred_norm)
    return [results[i] for i in range(len(items))]


def summarize(results: Sequence[ItemResult]) -> dict:
    """Overall and per-subject acc / acc_norm with standard errors, and the random-guess rate."""

    def block(rs: Sequence[ItemResult]) -> dict:
        acc = [r.acc for r in rs]
        norm = [r.acc_norm for r in rs]
        return {"n": len(rs), "acc": sum(acc) / len(rs), "acc_stderr": mean_stderr(acc),
                "acc_norm": sum(norm) / len(rs), "acc_norm_stderr": mean_stderr(norm),
                "random": sum(1 / len(r.choices) for r in rs) / len(rs)}

    if not results:
        return {"overall": None, "subjects": {}, "acc_norm_differs": False}
    by_subject: dict[str, list[ItemResult]] = defaultdict(list)
    for r in results:
        by_subject[r.subject].append(r)
    return {"overall": block(results), "subjects": {s: block(rs) for s, rs in sorted(by_subject.items())},
            "acc_norm_differs": acc_norm_can_differ([r.choices for r in results])}


def model_for(lm: models.LoadedModel, adapter: str = "") -> torch.nn.Module:
    """The base model (shared, read-only) or a PEFT copy with a saved adapter."""
    if not adapter:
        return lm.model
    return adapters.load_adapter(lm, adapter)
