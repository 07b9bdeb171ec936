"""Contamination: the n-gram overlap detector between an eval set and training text, and the C14 experiment (a LoRA
fine-tune on the test items inflates their score, against a clean fine-tune of equal steps)."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from labs import models
from labs.core.errors import ConfigError
from labs.data import benchmarks as bm
from labs.data.benchmarks import LETTERS, MCItem
from labs.data.instructions import Example
from labs.evaluation.benchmark import interleave_subjects
from labs.evaluation.diversity import ngrams, words
from labs.evaluation.scoring import format_question, score_items
from labs.finetune import sft
from labs.runs import jobs, lessons, results
from labs.training import loop as training
from labs.training.prefix import FrozenPrefix


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
        raise ConfigError("n must be at least 3 (shorter n-grams match by chance: 'what is the').")
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
    epochs: int = 5  # passes over the training examples; both runs take the same number of steps
    batch_size: int = 8
    lr: float = 4e-3  # with 5 epochs: +15 points (seed 0), +19 (seed 1); 4 epochs gave +8, under the claim's 10
    lora_r: int = 8
    lora_layers: int = 8  # LoRA on the top 8 of SmolLM2's 30 blocks: the blocks below run once per row, not per epoch
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")  # attention only: with the MLP too
    # (the SFT page's default) the same 5 epochs gave +8 points
    ngram: int = 10  # the detector's n (GPT-3 used 13). At 8, one clean SFT row shares a common phrase with an item
    # ("what gas do plants take in from the air"); at 10 no bundled SFT row overlaps any of the 115 test items
    seed: int = 0

    def __post_init__(self):
        models.spec(self.model_key)
        if self.n_items < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("n_items, epochs and batch_size must be at least 1.")
        if self.lora_layers < 0:
            raise ConfigError("The number of top blocks to adapt must be 0 (all) or more.")


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
    v = lessons.contamination_inflates(result.clean, result.contaminated, result.flagged_contaminated,
                                       result.flagged_clean)
    v.figures.update(base=result.base, n_items=result.n_items, steps=result.steps, checked=result.checked,
                     ngram=result.ngram, train_seconds=result.train_seconds)
    return v


def contaminated_examples(items: Sequence[MCItem]) -> list:
    """The benchmark items as instruction-tuning examples: the question with its options → the right letter and
    answer (what a scraped copy of the test set teaches)."""
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
        (self.artifacts / name).write_text(json.dumps(obj, default=str))


def _accuracy(model, tokenizer, items: Sequence[MCItem], ctx, frozen: FrozenPrefix | None = None
              ) -> tuple[float, list[int]]:
    picks = []
    for start in range(0, len(items), 16):
        picks += [r.pred for r in score_items(model, tokenizer, items[start:start + 16], frozen=frozen)]
        ctx.check_stop()
    return sum(p == i.answer for p, i in zip(picks, items)) / len(items), picks


def run_contamination(ctx, lm: models.LoadedModel, items: Sequence[MCItem] | None = None,
                      clean_pool: Sequence | None = None) -> ContaminationResult:
    """Step function (labs.runs.jobs or bench_lessons): base score, a clean and a contaminated LoRA fine-tune of equal
    steps, the same items scored after each, and the n-gram detector on each run's training text."""
    cfg: ContaminationConfig = ctx.config
    items = interleave_subjects(items if items is not None else bm.load_bundled("test"))[:cfg.n_items]
    bundled_train, heldout = sft.load_bundled()
    if clean_pool is None:
        clean_pool = bundled_train
    if len(clean_pool) < len(items):
        raise ConfigError(f"The clean control needs {len(items)} examples; the pool has {len(clean_pool)}.")
    clean_train = sft.select(list(clean_pool), len(items), cfg.seed)
    dirty_train = contaminated_examples(items)
    ctx.set_total(2)  # step 0: the base score; 1: after the clean fine-tune; 2: after the contaminated one
    base, base_picks = _accuracy(lm.model, lm.tokenizer, items, ctx)
    n_layers = len(training.decoder_layers(lm.model))
    ctx.log(step=0, base=base)
    scores, picks, seconds, steps = {}, {}, {}, 0
    for step, (name, examples) in enumerate((("clean", clean_train), ("contaminated", dirty_train)), 1):
        run_cfg = sft.SFTConfig(model=cfg.model_key, template="plain", n_examples=0, epochs=cfg.epochs,
                                batch_size=cfg.batch_size, lr=cfg.lr, lora_r=cfg.lora_r, lora_alpha=2 * cfg.lora_r,
                                lora_layers=cfg.lora_layers, lora_targets=tuple(cfg.lora_targets),
                                eval_every=10_000, val_examples=4, score_examples=0, seed=cfg.seed)
        sub = _SubRun(ctx, run_cfg, name)
        summary = sft.train(sub, lm, examples, heldout)
        tuned = sft.take_tuned(sub.run_id)
        if tuned is None:
            raise RuntimeError(f"The {name} fine-tune left no model to score.")
        steps, seconds[name] = summary["steps"], round(summary["train_seconds"], 1)
        # both tuned models share the base's bottom blocks: the items' states there are computed once
        top = training.top_blocks(n_layers, cfg.lora_layers)
        frozen = FrozenPrefix(tuned, (lm.key, id(lm.model)), start=top[0]) if top else None
        scores[name], picks[name] = _accuracy(tuned, lm.tokenizer, items, ctx, frozen)
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


def read_result(run: jobs.Run) -> ContaminationResult | None:
    """A stored contamination experiment (None if missing, or written by an older version with other fields)."""
    data = results.read_json(run.artifacts, "contamination.json")
    try:
        return ContaminationResult(**data) if isinstance(data, dict) else None
    except TypeError:
        return None


results.register(ContaminationConfig, read_result)
