"""The multiple-choice benchmark as a background run: its config, the step function, results.json (summary,
lm-evaluation-harness-shaped JSON, every item), the throughput comparison, and rows for the page."""
from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from labs import models
from labs.core.errors import ConfigError
from labs.data.benchmarks import MCItem, subject_name
from labs.evaluation.scoring import (CHOICE_FORMATS, ItemResult, acc_norm_can_differ, build_context, choice_strings,
                                     encode_pair, few_shot_pool, loglikelihood_naive, model_for, pick_shots,
                                     score_choices, score_item, summarize)
from labs.runs import jobs, results


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
            raise ConfigError(f"choice_format must be one of {CHOICE_FORMATS}.")
        if not 0 <= self.k_shot <= 10:
            raise ConfigError("k_shot must be between 0 and 10 (each example makes every prompt longer).")
        if self.limit < 0:
            raise ConfigError("limit must be 0 (all items) or a positive number of items.")


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


def run_benchmark(ctx, lm: models.LoadedModel, items: Sequence[MCItem], dev: Sequence[MCItem] = ()) -> dict:
    """Step function for labs.runs.jobs: score each item, log the running accuracy, keep partial results on Stop."""
    cfg: BenchmarkConfig = ctx.config
    items = interleave_subjects(items)[: cfg.limit or None] if cfg.limit else list(items)
    if not items:
        raise ConfigError("There are no items to score.")
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


def read_result(run: jobs.Run) -> results.EvaluationResult | None:
    """A stored benchmark run's scored items (None if it saved nothing readable)."""
    try:
        data = load_results(run.artifacts)
    except (OSError, ValueError, TypeError):
        return None
    return results.EvaluationResult("benchmark", data) if data else None


results.register(BenchmarkConfig, read_result)
