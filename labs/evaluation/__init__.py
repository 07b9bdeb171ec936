"""Evaluating language models: multiple-choice benchmarks by log-likelihood, generative answers, an LLM judge,
diversity and contamination.

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

import math
import random
import re
import string
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from labs import models
from labs.data.benchmarks import LETTERS, MCItem, subject_name

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
    from labs.data.benchmarks import shot_pool

    pool, _ = shot_pool(list(items), list(dev))
    if k > 0 and not pool:
        raise ValueError(f"{k}-shot prompts need solved examples from a separate dev set, and none is left: "
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
    from labs.training.loop import pad_id

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


def harness_json(summary: dict, config: dict, task: str = "mini_mmlu") -> dict:
    """Results in (close to) lm-evaluation-harness's results.json shape: 'acc,none', 'acc_stderr,none', ..."""

    with_norm = summary.get("acc_norm_differs", True)  # single-letter choices: acc_norm is acc, not reported

    def entry(alias: str, b: dict) -> dict:
        out = {"alias": alias, "acc,none": b["acc"], "acc_stderr,none": _json_float(b["acc_stderr"])}
        if with_norm:
            out.update({"acc_norm,none": b["acc_norm"], "acc_norm_stderr,none": _json_float(b["acc_norm_stderr"])})
        return dict(out, n_samples=b["n"])

    results, n_shot = {}, {}
    if summary.get("overall"):
        results[task] = entry(task, summary["overall"])
    for subject, b in summary.get("subjects", {}).items():
        name = f"{task}_{subject}"
        results[name] = entry(f" - {subject_name(subject)}", b)
        n_shot[name] = config.get("k_shot", 0)
    return {"results": results, "n-shot": n_shot,
            "n-samples": {k: {"effective": v["n_samples"]} for k, v in results.items()},
            "config": {"model": "hf", "model_args": f"pretrained={config.get('model_key')}"
                       + (f",peft={config['adapter']}" if config.get("adapter") else ""),
                       "num_fewshot": config.get("k_shot", 0), "limit": config.get("limit") or None,
                       "choice_format": config.get("choice_format"), "seed": config.get("seed")},
            "source": "LLM Lab (lm-evaluation-harness-style log-likelihood scoring)"}


def _json_float(x: float):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


# ---------------------------------------------------------------------------------------------------------------
# The benchmark as a background run
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchmarkConfig:
    """A multiple-choice benchmark run: which model (and adapter), which data, how choices are scored and how
    many solved examples the prompt shows."""
    model_key: str = models.DEFAULT_CHAT_MODEL
    adapter: str = ""  # folder of a saved LoRA adapter; "" = the base model
    dataset: str = "mini_mmlu"  # a name for the data ("mini_mmlu" or the uploaded file's name)
    data_digest: str = ""  # sha256 of an uploaded file, so a different file is a different run
    choice_format: str = "letters"  # letters: score ' A'..' D' (MMLU); text: score each choice's words (cloze)
    k_shot: int = 0  # solved examples in the prompt; MMLU reports 5-shot, 0 keeps a 2-core run under a minute
    dev: str = "bundled dev split"  # where the k-shot examples come from (never the scored items)
    limit: int = 0  # score only the first N items (0 = all)
    seed: int = 0

    def __post_init__(self):
        models.spec(self.model_key)
        if self.choice_format not in CHOICE_FORMATS:
            raise ValueError(f"choice_format must be one of {CHOICE_FORMATS}.")
        if not 0 <= self.k_shot <= 10:
            raise ValueError("k_shot must be between 0 and 10 (each example makes every prompt longer).")
        if self.limit < 0:
            raise ValueError("limit must be 0 (all items) or a positive number of items.")


def interleave_subjects(items: Sequence[MCItem]) -> list[MCItem]:
    """Round-robin over subjects (each keeps its order), so the first N items cover every subject."""
    by_subject: dict[str, list[MCItem]] = defaultdict(list)
    for item in items:
        by_subject[item.subject].append(item)
    queues = list(by_subject.values())
    out = []
    for i in range(max(map(len, queues), default=0)):
        out += [q[i] for q in queues if i < len(q)]
    return out


def model_for(lm: models.LoadedModel, adapter: str = "") -> torch.nn.Module:
    """The base model (shared, read-only) or a PEFT copy with a saved adapter."""
    if not adapter:
        return lm.model
    from labs.models import adapters

    return adapters.load_adapter(lm, adapter)


def run_benchmark(ctx, lm: models.LoadedModel, items: Sequence[MCItem], dev: Sequence[MCItem] = ()) -> dict:
    """Step function for labs.runs.jobs: score each item, log the running accuracy, keep partial results on Stop."""
    cfg: BenchmarkConfig = ctx.config
    items = interleave_subjects(items)[: cfg.limit or None] if cfg.limit else list(items)
    if not items:
        raise ValueError("There are no items to score.")
    model = model_for(lm, cfg.adapter)
    lock = lm.lock if model is lm.model else None
    pool = few_shot_pool(items, dev, cfg.k_shot)
    norm_differs = acc_norm_can_differ([choice_strings(i, cfg.choice_format) for i in items])
    ctx.set_total(len(items))
    stride = max(1, len(items) // 300)  # at most ~300 points on the live curve, even for a 10k-item upload
    results: list[ItemResult] = []
    t0 = time.perf_counter()
    try:
        for i, item in enumerate(items, 1):
            results.append(score_item(model, lm.tokenizer, item, pick_shots(item, pool, cfg.k_shot, cfg.seed),
                                      cfg.choice_format, lock))
            if i % stride == 0 or i == len(items):
                n = len(results)
                norm = {"acc_norm": sum(r.acc_norm for r in results) / n} if norm_differs else {}
                ctx.log(step=i, acc=sum(r.acc for r in results) / n, **norm,
                        items_per_s=i / (time.perf_counter() - t0))
            else:
                ctx.check_stop()
    finally:  # Stop (or a crash) keeps what was scored so far
        save_results(ctx, results, complete=len(results) == len(items), total=len(items))
    summary = summarize(results)["overall"]
    return {"acc": summary["acc"], "acc_norm": summary["acc_norm"], "n": summary["n"],
            "items_per_s": len(items) / (time.perf_counter() - t0)}


def save_results(ctx, results: Sequence[ItemResult], complete: bool, total: int) -> None:
    """Write results.json to the run folder: summary, harness-style JSON and every item (also after Stop)."""
    summary = summarize(results)
    ctx.save_json("results.json", {"summary": summary, "complete": complete, "total": total,
                                   "harness": harness_json(summary, asdict(ctx.config), ctx.config.dataset),
                                   "samples": [asdict(r) for r in results]})


def load_results(folder: str | Path) -> dict | None:
    """What a benchmark run saved (also after Stop), with ItemResult objects back; None if nothing yet."""
    import json

    path = Path(folder) / "results.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    data["samples"] = [ItemResult(**s) for s in data["samples"]]
    return data


def throughput(lm: models.LoadedModel, items: Sequence[MCItem], choice_format: str = "letters",
               k_shot: int = 0, dev: Sequence[MCItem] = ()) -> dict:
    """Items per second: prefix-shared batched scoring vs one forward pass per choice (the naive loop)."""
    tok, model = lm.tokenizer, lm.model
    pool = few_shot_pool(items, dev, k_shot)
    prepared = []
    for item in items:
        context = build_context(item, pick_shots(item, pool, k_shot), choice_format)
        prepared.append([encode_pair(tok, context, " " + c) for c in choice_strings(item, choice_format)])
    with lm.lock:
        t0 = time.perf_counter()
        for pairs in prepared:
            score_choices(model, pairs[0][0], [p[1] for p in pairs])
        fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        for pairs in prepared:
            for c, cont in pairs:
                loglikelihood_naive(model, c, cont)
        naive = time.perf_counter() - t0
    return {"items": len(items), "fast_items_per_s": len(items) / fast, "naive_items_per_s": len(items) / naive,
            "speedup": naive / fast}


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
            raise ValueError("max_new_tokens must be between 1 and 256.")
        if self.extract_regex:
            try:
                re.compile(self.extract_regex)
            except re.error as exc:
                raise ValueError(f"The extraction regex is invalid ({exc}).") from None


def run_generative(ctx, lm, rows: Sequence[dict]) -> dict:
    """Step function: greedy answers to each prompt, scored three ways. `lm`: a local model or an endpoint."""
    from labs.serving import endpoints as backends
    from labs.serving.generation import GenerationConfig

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


# ---------------------------------------------------------------------------------------------------------------
# Pairwise LLM-as-a-judge, both orders (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena")
# ---------------------------------------------------------------------------------------------------------------
JUDGE_PROMPT = ("You are a strict judge. Which response answers the question better?\n\n"
                "Question: {question}\n\nResponse 1: {first}\n\nResponse 2: {second}\n\n"
                "Reply with the number of the better response, 1 or 2.")


def combine_orders(pick_ab: int, pick_ba: int) -> str:
    """Verdict from two judgments: (A shown first) and (B shown first); picks are slots 1 or 2 (0 = the judge
    named neither, which only a judge that writes text can do; that pair is a tie).
    A wins only if chosen in both orders, B likewise; a judge that changes its mind when the order flips is
    showing position bias, and that counts as a tie (MT-Bench's conservative rule)."""
    if 0 in (pick_ab, pick_ba):
        return "tie"
    a_wins_ab, a_wins_ba = pick_ab == 1, pick_ba == 2
    if a_wins_ab and a_wins_ba:
        return "A"
    if not a_wins_ab and not a_wins_ba:
        return "B"
    return "tie"


def judge_by_text(judge, text: str) -> tuple[int, float]:
    """A judge behind an endpoint gives no probabilities: it writes its verdict (greedy, a few tokens) and the
    first '1' or '2' in it is the pick; P(slot 1) is then 1, 0, or NaN when it named neither (pick 0)."""
    from labs.serving import endpoints as backends
    from labs.serving.generation import GenerationConfig

    reply = backends.generate(judge, text, GenerationConfig(max_new_tokens=8, temperature=0.0, seed=0,
                                                            repetition_penalty=1.0))
    found = re.search(r"[12]", reply)
    if not found:
        return 0, float("nan")
    pick = int(found.group())
    return pick, 1.0 if pick == 1 else 0.0


def judge_once(judge, question: str, first: str, second: str) -> tuple[int, float]:
    """(slot picked, P(slot 1) renormalised over {1, 2}): the judge's next-token log-likelihood of '1' vs '2'
    (a local judge), or the number it writes (an endpoint: judge_by_text)."""
    from labs.serving import endpoints as backends
    from labs.serving.generation import render_prompt

    text = JUDGE_PROMPT.format(question=question, first=first, second=second)
    if backends.is_endpoint(judge):
        return judge_by_text(judge, text)
    chat = judge.spec.prompt_format == "chat"
    context = render_prompt(judge, text) if chat else text + "\nBetter response:"
    sep = "" if chat else " "
    pairs = [encode_pair(judge.tokenizer, context, sep + s) for s in ("1", "2")]
    with judge.lock:
        (l1, _), (l2, _) = score_choices(judge.model, pairs[0][0], [pairs[0][1], pairs[1][1]])
    p1 = 1 / (1 + math.exp(l2 - l1))
    return (1 if l1 >= l2 else 2), p1


def judge_pair(judge: models.LoadedModel, question: str, a: str, b: str) -> dict:
    """Ask the judge twice, with a and b in both orders: picks (1, 2 or 0 for no verdict), the probability of
    slot 1 in each order, and the combined verdict."""
    pick_ab, p_ab = judge_once(judge, question, a, b)
    pick_ba, p_ba = judge_once(judge, question, b, a)
    return {"pick_ab": pick_ab, "pick_ba": pick_ba, "p1_ab": p_ab, "p1_ba": p_ba,
            "verdict": combine_orders(pick_ab, pick_ba)}


def judge_biases(records: Sequence[dict]) -> dict:
    """Rates measured on this run. Each record: verdict, pick_ab, pick_ba, a, b, and optionally gold ('A'/'B').

    position_bias: share of pairs where the judge chose the same slot in both orders (so the verdict flipped);
    first_slot: share of all single judgments that chose slot 1 (0.5 = no preference);
    length_bias: among decided pairs of different lengths, share won by the longer response (0.5 = none);
    accuracy: among pairs with a known better answer, share the judge got right (ties count as wrong)."""
    n = len(records)
    if not n:
        return {}
    same_slot = sum(r["pick_ab"] == r["pick_ba"] != 0 for r in records)
    first = sum((r["pick_ab"] == 1) + (r["pick_ba"] == 1) for r in records)
    decided = [r for r in records if r["verdict"] != "tie" and len(r["a"]) != len(r["b"])]
    longer_won = sum((r["verdict"] == "A") == (len(r["a"]) > len(r["b"])) for r in decided)
    known = [r for r in records if r.get("gold")]
    out = {"pairs": n, "ties": sum(r["verdict"] == "tie" for r in records) / n, "position_bias": same_slot / n,
           "first_slot": first / (2 * n), "length_bias": longer_won / len(decided) if decided else float("nan"),
           "decided_with_length_gap": len(decided)}
    if known:
        out["accuracy"] = sum(r["verdict"] == r["gold"] for r in known) / len(known)
        out["known_pairs"] = len(known)
    return out


_PADDING = (" I am quite confident about this, because it is a well-known fact that is explained in many "
            "textbooks and encyclopedias, and most experts would give the same answer.")


def known_pairs(rows: Sequence[dict], seed: int = 0) -> list[dict]:
    """Pairs with a known better answer: the reference vs another question's answer. Half the time the right
    answer gets the long, confident padding and half the time the wrong one does, so length and correctness are
    independent, and which one is shown as 'A' is shuffled: a fair judge scores ~50% length bias."""
    rng = random.Random(seed)
    out = []
    answers = [r["answer"] for r in rows]
    for i, row in enumerate(rows):
        wrong = next((a for a in answers[i + 1:] + answers[:i] if normalize_answer(a) != normalize_answer(row["answer"])),
                     "I don't know")
        right_text, wrong_text = f"{row['answer']}.", f"{wrong}."
        if i % 2:
            right_text = f"The answer is {row['answer']}.{_PADDING}"
        else:
            wrong_text = f"The answer is {wrong}.{_PADDING}"
        if rng.random() < 0.5:
            out.append({"question": row["prompt"], "a": right_text, "b": wrong_text, "gold": "A"})
        else:
            out.append({"question": row["prompt"], "a": wrong_text, "b": right_text, "gold": "B"})
    return out


@dataclass(frozen=True)
class JudgeConfig:
    """An LLM-as-judge run: the judge model and the pairs it judges (known right/wrong pairs, or two runs'
    answers)."""
    judge_key: str = models.DEFAULT_CHAT_MODEL
    pairs_source: str = "known"  # "known" (reference vs wrong answer) or "runs:<run_a>,<run_b>"
    data_digest: str = "bundled"
    seed: int = 0

    def __post_init__(self):
        models.spec(self.judge_key)
        if not (self.pairs_source == "known" or self.pairs_source.startswith("runs:")):
            raise ValueError("pairs_source must be 'known' or 'runs:<run_a>,<run_b>'.")


def run_judge(ctx, judge: models.LoadedModel, pairs: Sequence[dict]) -> dict:
    """Judge every pair in both orders, logging position bias, first-slot share, accuracy and ties as it goes;
    judgments.json keeps every record."""
    ctx.set_total(len(pairs))
    records = []
    try:
        for i, pair in enumerate(pairs, 1):
            records.append(dict(pair, **judge_pair(judge, pair["question"], pair["a"], pair["b"])))
            rates = judge_biases(records)
            ctx.log(step=i, **{k: v for k, v in rates.items() if k in ("position_bias", "first_slot", "accuracy", "ties")})
    finally:
        ctx.save_json("judgments.json", {"records": records, "rates": judge_biases(records)})
    return judge_biases(records)


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
            raise ValueError("The prompt is empty: type something for the model to continue.")
        if not self.temperatures or any(not 0 < t <= 3 for t in self.temperatures):
            raise ValueError("Pick at least one temperature, each in (0, 3].")
        if not 2 <= self.samples <= 20:
            raise ValueError("samples must be between 2 and 20 (similarity needs at least two).")
        if not 4 <= self.max_new_tokens <= 200:
            raise ValueError("max_new_tokens must be between 4 and 200.")


def run_diversity(ctx, lm, embed: Callable[[list[str]], object] | None = None) -> dict:
    """`lm`: a local model (samples of one temperature decode in one batch) or an endpoint (one after another)."""
    from labs.serving.endpoints import generate_many
    from labs.serving.generation import GenerationConfig

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


# ---------------------------------------------------------------------------------------------------------------
# Contamination: n-gram overlap between an eval set and training data (GPT-3 paper, Brown et al. 2020, App. C)
# ---------------------------------------------------------------------------------------------------------------
TEXT_SUFFIXES = {".txt", ".md", ".jsonl", ".json", ".csv", ".tsv"}


def training_sources(root: Path, exclude: Sequence[str] = ("eval",), max_bytes: int = 20_000_000) -> dict[str, Path]:
    """Text files under assets/ that the other labs train or retrieve on (the eval set's own folder excluded)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if (path.is_file() and path.suffix.lower() in TEXT_SUFFIXES and rel.parts[0] not in exclude
                and path.name != "README.md" and path.stat().st_size <= max_bytes):
            found[str(rel)] = path
    return found


def contamination(eval_texts: Sequence[tuple[str, str]], sources: dict[str, str], n: int = 8) -> dict:
    """Flag each eval item that shares at least one word n-gram with any training text.

    eval_texts: (id, text) pairs; sources: name -> text. The eval n-grams are few, so each training text is
    streamed once through a window of n words and looked up in them (cheap even for large corpora)."""
    if n < 3:
        raise ValueError("n must be at least 3 (shorter n-grams match by chance: 'what is the').")
    item_grams = {item_id: set(ngrams(words(text), n)) for item_id, text in eval_texts}
    owners: dict[tuple, list[str]] = defaultdict(list)
    for item_id, grams in item_grams.items():
        for g in grams:
            owners[g].append(item_id)
    hits: dict[str, set] = defaultdict(set)
    where: dict[str, Counter] = defaultdict(Counter)
    for name, text in sources.items():
        for g in ngrams(words(text), n):
            for item_id in owners.get(g, ()):
                hits[item_id].add(g)
                where[item_id][name] += 1
    rows = []
    for item_id, text in eval_texts:
        grams = item_grams[item_id]
        rows.append({"id": item_id, "text": text, "ngrams": len(grams), "overlapping": len(hits[item_id]),
                     "overlap_fraction": len(hits[item_id]) / len(grams) if grams else 0.0,
                     "flagged": bool(hits[item_id]), "sources": ", ".join(sorted(where[item_id])),
                     "example": " ".join(min(hits[item_id])) if hits[item_id] else "",
                     "too_short": not grams})
    checked = [r for r in rows if not r["too_short"]]
    return {"rows": rows, "n": n, "checked": len(checked), "too_short": len(rows) - len(checked),
            "flagged": sum(r["flagged"] for r in rows), "sources": sorted(sources)}


def item_text(item: MCItem) -> str:
    """What a contaminated training text would contain: the question and its right answer."""
    return f"{item.prompt} {item.choices[item.answer]}"


def run_pairs(outputs_a: Sequence[dict], outputs_b: Sequence[dict]) -> list[dict]:
    """Pairs from two generative runs on the same prompts: model A's answer vs model B's (no known winner)."""
    by_prompt = {r["prompt"]: r for r in outputs_b}
    pairs = [{"question": r["prompt"], "a": r["output"].strip() or "(empty)", "b": by_prompt[r["prompt"]]["output"].strip()
              or "(empty)"} for r in outputs_a if r["prompt"] in by_prompt]
    if not pairs:
        raise ValueError("The two Q&A runs share no prompts; run both on the same prompt/answer set.")
    return pairs


def judge_verdict_text(rates: dict, judge_name: str) -> str:
    """A plain sentence about how far to trust this judge, from the rates measured on this run."""
    parts = [f"{judge_name} as a judge:"]
    if "accuracy" in rates:
        parts.append(f"it picked the right answer in {rates['accuracy']:.0%} of {rates['known_pairs']} pairs whose "
                     "answer we know (a coin flip that never ties would get about 50%).")
    parts.append(f"In {rates['position_bias']:.0%} of pairs its choice followed the position, not the content.")
    if math.isfinite(rates.get("length_bias", float("nan"))):
        parts.append(f"The longer response won {rates['length_bias']:.0%} of decided pairs.")
    parts.append("A 135M–270M model cannot read two answers and compare them reliably; its verdicts here show the "
                 "biases, not quality. Real LLM-as-a-judge setups use a far stronger model than the one judged, "
                 "swap orders, and check agreement with humans.")
    return " ".join(parts)


def run_label(config: dict) -> str:
    """Short legend name for a benchmark run's config."""
    name = models.REGISTRY[config["model_key"]].display_name if config.get("model_key") in models.REGISTRY else config.get("model_key")
    adapter = f" + {Path(config['adapter']).name}" if config.get("adapter") else ""
    limit = f" · first {config['limit']}" if config.get("limit") else ""
    return f"{name}{adapter} · {config.get('dataset')} · {config.get('choice_format')} · {config.get('k_shot')}-shot{limit}"


def sample_rows(result: ItemResult) -> list[dict]:
    """The sample viewer's table: one row per choice."""
    norm = [ll / max(len(c), 1) for ll, c in zip(result.loglik, result.choices)]
    return [{"choice": c, "text": t, "loglik": round(ll, 3), "loglik / char": round(n, 3), "greedy": g,
             "gold": "✓" if i == result.answer else "", "acc pick": "◀" if i == result.pred else "",
             "acc_norm pick": "◀" if i == result.pred_norm else ""}
            for i, (c, t, ll, n, g) in enumerate(zip(result.choices, result.choice_texts, result.loglik, norm, result.greedy))]


def sample_record(result: ItemResult) -> dict:
    """One line of the per-sample export, close to lm-eval's --log_samples."""
    return {"doc_id": result.id, "subject": result.subject, "target": result.answer, "arguments": result.choices,
            "resps": [[ll, g] for ll, g in zip(result.loglik, result.greedy)], "acc": result.acc,
            "acc_norm": result.acc_norm}


# ---------------------------------------------------------------------------------------------------------------
# Charts (plain data in, Plotly figure out)
# ---------------------------------------------------------------------------------------------------------------
def subject_chart(runs: dict[str, dict], metric: str = "acc"):
    """Grouped bars: per-subject accuracy of each run, ±1 standard error, and the random-guess line."""
    import plotly.graph_objects as go

    from labs.core.charts import PALETTE, _layout

    fig = go.Figure()
    random_rate = None
    for i, (label, summary) in enumerate(runs.items()):
        subjects = list(summary["subjects"]) + ["ALL"]
        blocks = list(summary["subjects"].values()) + [summary["overall"]]
        errs = [b[f"{metric}_stderr"] if b[f"{metric}_stderr"] == b[f"{metric}_stderr"] else 0 for b in blocks]
        fig.add_bar(x=[s.replace("_", " ") for s in subjects], y=[b[metric] for b in blocks], name=label,
                    error_y=dict(type="data", array=errs), marker_color=PALETTE[i % len(PALETTE)])
        random_rate = summary["overall"]["random"]
    if random_rate is not None:
        fig.add_hline(y=random_rate, line_dash="dash", annotation_text=f"random guessing ({random_rate:.0%})")
    fig.update_layout(barmode="group", yaxis_range=[0, 1], showlegend=True)
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, f"{metric} per subject (±1 standard error)", "", metric, height=420)


def answer_chart(dist: dict):
    """Grouped bars: share of each answer position among the model's picks and among the right answers, and the
    chance line (1 / number of choices)."""
    import plotly.graph_objects as go

    from labs.core.charts import PALETTE, _layout

    fig = go.Figure()
    fig.add_bar(x=dist["labels"], y=dist["predicted"], name="model's picks", marker_color=PALETTE[0],
                text=[f"{v:.0%}" for v in dist["predicted"]], textposition="auto")
    fig.add_bar(x=dist["labels"], y=dist["gold"], name="right answers", marker_color=PALETTE[1],
                text=[f"{v:.0%}" for v in dist["gold"]], textposition="auto")
    fig.add_hline(y=dist["chance"], line_dash="dash", annotation_text=f"chance ({dist['chance']:.0%})")
    fig.update_layout(barmode="group", yaxis_range=[0, 1], showlegend=True)
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, f"Which answer did the model pick? ({dist['n']} items)", "answer position", "share of items",
                   height=340)


def diversity_chart(table: Sequence[dict]):
    """Diversity scores (0–1) against sampling temperature, one line per metric."""
    from labs.core.charts import curves

    temps = [r["temperature"] for r in table]
    keys = [k for k in ("distinct_1", "distinct_2", "self_similarity", "self_overlap") if k in table[0]]
    return curves({k: (temps, [r[k] for r in table]) for k in keys}, title="Diversity vs temperature",
                  x="temperature", y="score (0..1)")


# ---------------------------------------------------------------------------------------------------------------
# Contamination inflates a score (claim C14): fine-tune on the test items, score them again, against a clean run
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContaminationConfig:
    """The C14 experiment: score `n_items` bundled test items with the base model, then after the same short LoRA
    fine-tune on (a) those items written as question → answer examples and (b) as many bundled SFT examples that
    are not benchmark items (the clean control)."""
    model_key: str = models.DEFAULT_CHAT_MODEL
    n_items: int = 48  # bundled mini-MMLU test items, interleaved over subjects
    epochs: int = 8  # passes over the training examples; both runs take the same number of steps
    batch_size: int = 8
    lr: float = 2e-3
    lora_r: int = 8
    ngram: int = 10  # the detector's n (GPT-3 used 13). At 8, one clean SFT row shares a common phrase with an item
    # ("what gas do plants take in from the air"); at 10 no bundled SFT row overlaps any of the 115 test items
    seed: int = 0

    def __post_init__(self):
        models.spec(self.model_key)
        if self.n_items < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("n_items, epochs and batch_size must be at least 1.")


@dataclass
class ContaminationResult:
    """Scores (acc, 0..1) on the same items before and after each fine-tune, and the detector's counts."""
    n_items: int
    steps: int  # optimizer steps of each fine-tune (equal for both)
    base: float
    clean: float
    contaminated: float
    flagged_contaminated: int  # items the n-gram detector flags against the contaminated training text
    flagged_clean: int  # ... against the clean training text
    checked: int  # items long enough to hold an n-gram
    ngram: int
    train_seconds: dict
    examples: list  # a few (item id, base pick, clean pick, contaminated pick, answer) rows

    def to_json(self) -> dict:
        return asdict(self)


def contamination_verdict(result: ContaminationResult):
    """C14's verdict from the experiment's figures (labs.runs.lessons.contamination_inflates), with the rest attached."""
    from labs.runs import lessons

    v = lessons.contamination_inflates(result.clean, result.contaminated, result.flagged_contaminated,
                                       result.flagged_clean)
    v.figures.update(base=result.base, n_items=result.n_items, steps=result.steps, checked=result.checked,
                     ngram=result.ngram, train_seconds=result.train_seconds)
    return v


def contaminated_examples(items: Sequence[MCItem]) -> list:
    """The benchmark items as instruction-tuning examples: the question with its options → the right letter and
    answer (what a scraped copy of the test set teaches)."""
    from labs.data.instructions import Example

    return [Example(format_question(item).removesuffix("\nAnswer:"),
                    f"Answer: {LETTERS[item.answer]}. {item.choices[item.answer]}", family="contaminated")
            for item in items]


def example_text(examples: Sequence) -> str:
    """The training text of SFT examples (instruction, input and output), as the detector reads a corpus."""
    return "\n\n".join(f"{e.instruction}\n{e.input}\n{e.output}" for e in examples)


class _SubRun:
    """One fine-tune inside the experiment: its own config, run id and artifact folder; logs, notes and Stop go
    through the parent run."""

    def __init__(self, parent, config, name: str):
        self._parent, self.config, self.seed = parent, config, getattr(config, "seed", 0)
        self.run_id = f"{parent.run_id}-{name}"
        self.artifacts = Path(parent.artifacts) / name
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self._name = name

    def set_total(self, n):
        pass

    def note(self, text):
        self._parent.note(f"[{self._name}] {text}")

    def should_stop(self):
        return self._parent.should_stop()

    def check_stop(self):
        self._parent.check_stop()

    def log(self, **m):
        self._parent.check_stop()

    def save_json(self, name, obj):
        import json

        (self.artifacts / name).write_text(json.dumps(obj, default=str))


def _accuracy(model, tokenizer, items: Sequence[MCItem], ctx) -> tuple[float, list[int]]:
    picks = []
    for item in items:
        picks.append(score_item(model, tokenizer, item).pred)
        ctx.check_stop()
    return sum(p == i.answer for p, i in zip(picks, items)) / len(items), picks


def run_contamination(ctx, lm: models.LoadedModel, items: Sequence[MCItem] | None = None,
                      clean_pool: Sequence | None = None) -> ContaminationResult:
    """Step function (labs.runs.jobs or bench_lessons): base score, a clean and a contaminated LoRA fine-tune of equal
    steps, the same items scored after each, and the n-gram detector on each run's training text."""
    from labs.finetune import sft
    from labs.data import benchmarks as bm

    cfg: ContaminationConfig = ctx.config
    items = interleave_subjects(items if items is not None else bm.load_bundled("test"))[:cfg.n_items]
    bundled_train, heldout = sft.load_bundled()
    if clean_pool is None:
        clean_pool = bundled_train
    if len(clean_pool) < len(items):
        raise ValueError(f"The clean control needs {len(items)} examples; the pool has {len(clean_pool)}.")
    clean_train = sft.select(list(clean_pool), len(items), cfg.seed)
    dirty_train = contaminated_examples(items)
    ctx.set_total(2)  # step 0: the base score; 1: after the clean fine-tune; 2: after the contaminated one
    base, base_picks = _accuracy(lm.model, lm.tokenizer, items, ctx)
    ctx.log(step=0, base=base)
    scores, picks, seconds, steps = {}, {}, {}, 0
    for step, (name, examples) in enumerate((("clean", clean_train), ("contaminated", dirty_train)), 1):
        run_cfg = sft.SFTConfig(model=cfg.model_key, template="plain", n_examples=0, epochs=cfg.epochs,
                                batch_size=cfg.batch_size, lr=cfg.lr, lora_r=cfg.lora_r, lora_alpha=2 * cfg.lora_r,
                                eval_every=10_000, val_examples=4, score_examples=0, seed=cfg.seed)
        sub = _SubRun(ctx, run_cfg, name)
        summary = sft.train(sub, lm, examples, heldout)
        tuned = sft.take_tuned(sub.run_id)
        if tuned is None:
            raise RuntimeError(f"The {name} fine-tune left no model to score.")
        steps, seconds[name] = summary["steps"], round(summary["train_seconds"], 1)
        scores[name], picks[name] = _accuracy(tuned, lm.tokenizer, items, ctx)
        ctx.log(step=step, **{name: scores[name]})
        del tuned
    eval_texts = [(i.id, format_question(i)) for i in items]  # each item as the test shows it (question + options)
    flagged = {name: contamination(eval_texts, {name: example_text(ex)}, n=cfg.ngram)
               for name, ex in (("clean", clean_train), ("contaminated", dirty_train))}
    rows = [[i.id, LETTERS[b], LETTERS[c], LETTERS[d], LETTERS[i.answer]]
            for i, b, c, d in zip(items, base_picks, picks["clean"], picks["contaminated"])][:8]
    result = ContaminationResult(len(items), steps, base, scores["clean"], scores["contaminated"],
                                 flagged["contaminated"]["flagged"], flagged["clean"]["flagged"],
                                 flagged["contaminated"]["checked"], cfg.ngram, seconds, rows)
    if hasattr(ctx, "save_json"):
        ctx.save_json("contamination.json", result.to_json())
    return result
