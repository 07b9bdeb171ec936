"""One typed result per lab, read from a finished run's folder: pages draw these and never open run files.

    result = results.load_result(run)      # None while the run is active, or when it left nothing to read
    if isinstance(result, results.SFTResult): ...

`load_result` dispatches on the run's kind, which jobs.submit records as `jobs.kind_of(config)` (the config class's
name); pages name a kind by its config class (`results.runs(sft.SFTConfig)`), never by a class-name string. Every
reader is forgiving: a missing or half-written file gives None (or an empty list), never an exception, because a run
that was stopped, crashed or is still writing is normal in a classroom.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from labs.runs import jobs


def runs(config_class: type, *, status: tuple[str, ...] | None = None, with_metrics: bool = False) -> list[jobs.Run]:
    """Every run of this config class, newest first; optionally only those with a given status / with metrics."""
    found = jobs.list_runs(config_class)
    return [r for r in found if (status is None or r.status in status) and (r.metrics or not with_metrics)]


def read_json(folder: str | Path, name: str, default: Any = None) -> Any:
    """A JSON artifact of a run (`default` if it is missing or unreadable)."""
    try:
        return json.loads((Path(folder) / name).read_text())
    except (OSError, ValueError):
        return default


def _adapter(folder: Path) -> Path | None:
    path = folder / "adapter"
    return path if path.exists() else None


# -- one dataclass per lab ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SFTResult:
    """Instruction tuning (labs.finetune.sft.train): the run summary, the held-out before/after answers, the adapter."""
    summary: dict
    score_rows: list[dict] = field(default_factory=list)  # {instruction, input, before, after, format_before, ...}
    adapter: Path | None = None  # PEFT adapter folder (LoRA mode only)
    folder: Path | None = None  # the run's artifact folder (the merged model is written under it)

    @property
    def scored(self) -> bool:
        """True when the run scored held-out answers before and after (score_examples > 0)."""
        return "format_after" in self.summary


@dataclass(frozen=True)
class ClassifierResult:
    """Classifier fine-tuning (labs.finetune.classifier.train): one row per trainable-blocks setting."""
    rows: list[dict]  # {setting, blocks, trainable, val_acc_before, val_acc, train_acc, seconds_per_epoch, ...}
    classes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DPOResult:
    """Preference tuning (labs.finetune.dpo.train): held-out scores, before/after answers, forgetting check, the adapter."""
    heldout: dict | None  # policy_prefers_chosen, reference_prefers_chosen, implicit_reward_accuracy, mean_margin, rows
    samples: list[dict]  # {prompt, reference, tuned} on held-out prompts
    general: list[dict]  # the same on general prompts (forgetting check)
    general_drift_per_token: float  # nats/token change on the reference's own general answers
    adapter: str
    trainable: int = 0
    total: int = 0


@dataclass(frozen=True)
class LoraResult:
    """One LoRA explorer run (labs.finetune.lora.train_lora): losses, task score and cost before/after; the adapter folder."""
    targets: tuple[str, ...]
    r: int
    summary: dict  # trainable_params, base_val_loss, final_val_loss, task_score_before/after, train_seconds, adapter
    replayed: bool = False

    @property
    def adapter(self) -> str | None:
        """The saved adapter folder, or None when the run kept none."""
        return self.summary.get("adapter")


@dataclass(frozen=True)
class MixtureResult:
    """Tiny GPT on a data mixture (labs.mixtures.train_mixture): final per-domain losses and text samples."""
    domains: list[str]
    final: list[dict]  # {domain, validation (nats/byte), train windows (nats/byte), epochs}
    samples: list[dict]  # {step, domain, text}


@dataclass(frozen=True)
class RagEvalResult:
    """RAG evaluation (labs.rag.evaluate.run_eval): the summary and one row per question."""
    summary: dict
    questions: list[dict]


@dataclass(frozen=True)
class RagClaimResult:
    """RAG vs no-RAG over the bundled questions (labs.rag.evaluate.run_rag_claim): summary and both answers."""
    summary: dict
    answers: list[dict]


@dataclass(frozen=True)
class AttentionResult:
    """Attention variants (labs.attention): trained-task accuracy, a pairs sweep, or measured cost — by `what`."""
    what: str  # "task" (TrainConfig), "sweep" (PairsSweepConfig) or "cost" (CostConfig)
    data: dict  # result.json / cost.json as written by the lab
    folder: Path | None = None  # holds <mixer>.pt for a trained task (labs.attention.model.load_trained)

    @property
    def accuracy(self) -> dict:
        """{mixer: final held-out accuracy (0-1)} of a trained task; {} for other kinds of run."""
        return self.data.get("accuracy", {})


@dataclass(frozen=True)
class EvaluationResult:
    """Evaluation runs (labs.evaluation): benchmark, Q&A generations, judge, or diversity — by `what`."""
    what: str  # "benchmark", "generative", "judge" or "diversity"
    data: Any  # benchmark: load_results dict (ItemResult samples); generative: rows; judge/diversity: dict

    @property
    def rows(self) -> list[dict]:
        """Q&A generations (generative runs): {prompt, answer, output, prediction, exact_match, contains, regex}."""
        return self.data if self.what == "generative" and isinstance(self.data, list) else []


# -- readers ------------------------------------------------------------------------------------------------------------
def read_sft(run: jobs.Run) -> SFTResult | None:
    folder = Path(run.artifacts)
    return SFTResult(summary=dict(run.summary or {}), score_rows=read_json(folder, "score.json", {}).get("rows", []),
                     adapter=_adapter(folder), folder=folder)


def read_classifier(run: jobs.Run) -> ClassifierResult | None:
    s = run.summary or {}
    rows = s.get("results") or read_json(run.artifacts, "classifier.json", [])
    return ClassifierResult(rows=list(rows), classes=list(s.get("classes", []))) if rows else None


def read_dpo(run: jobs.Run) -> DPOResult | None:
    data = read_json(run.artifacts, "result.json")
    if not isinstance(data, dict):
        return None
    return DPOResult(heldout=data.get("heldout"), samples=data.get("samples", []), general=data.get("general", []),
                     general_drift_per_token=float(data.get("general_drift_per_token", float("nan"))),
                     adapter=data.get("adapter", ""), trainable=data.get("trainable", 0), total=data.get("total", 0))


def read_lora(run: jobs.Run) -> LoraResult | None:
    if not run.summary:
        return None
    return LoraResult(targets=tuple(run.config.get("targets", ())), r=int(run.config.get("r", 0)),
                      summary=dict(run.summary), replayed=run.replayed)


def read_mixture(run: jobs.Run) -> MixtureResult | None:
    s = run.summary or {}
    if not s:
        return None
    domains = list(run.config.get("domains", []))
    nan = float("nan")
    final = [{"domain": d, "validation": s.get(f"val_{d}", nan), "train windows": s.get(f"train_{d}", nan),
              "epochs": s.get(f"epochs_{d}", 0.0)} for d in domains]
    return MixtureResult(domains=domains, final=final, samples=read_json(run.artifacts, "samples.json", []))


def read_rag_eval(run: jobs.Run) -> RagEvalResult | None:
    return RagEvalResult(summary=dict(run.summary or {}), questions=read_json(run.artifacts, "questions.json", []))


def read_rag_claim(run: jobs.Run) -> RagClaimResult | None:
    return RagClaimResult(summary=dict(run.summary or {}), answers=read_json(run.artifacts, "answers.json", []))


def attention_reader(what: str, name: str) -> Callable[[jobs.Run], AttentionResult | None]:
    def read(run: jobs.Run) -> AttentionResult | None:
        data = read_json(run.artifacts, name) or (run.summary if run.summary else None)
        return AttentionResult(what, data, Path(run.artifacts)) if isinstance(data, dict) else None
    return read


def evaluation_reader(what: str, name: str) -> Callable[[jobs.Run], EvaluationResult | None]:
    def read(run: jobs.Run) -> EvaluationResult | None:
        data = read_json(run.artifacts, name)
        return EvaluationResult(what, data) if data is not None else None
    return read


_READERS: dict[str, Callable[[jobs.Run], Any]] = {}  # run kind (the config class's name) -> its lab's reader


def register(config_class: type, reader: Callable[[jobs.Run], Any]) -> None:
    """A lab names the reader of its runs (at import, beside its config class); runs stays below the labs."""
    _READERS[jobs.kind_of(config_class)] = reader


def readers() -> dict[str, Callable[[jobs.Run], Any]]:
    """Run kind -> reader, for every lab imported so far (a page imports its lab before it reads a run)."""
    return dict(_READERS)


def generated_rows(run: jobs.Run | None) -> list[dict]:
    """The Q&A rows of a finished generative evaluation run ([] for anything else)."""
    result = load_result(run)
    return result.rows if isinstance(result, EvaluationResult) else []


def load_result(run: jobs.Run | None, *, partial: bool = False):
    """The typed result of a run (SFTResult, DPOResult, …), or None: no run, still active, or nothing saved.

    partial=True also reads a stopped or failed run (a benchmark saves the items it scored before Stop)."""
    if run is None or run.active:
        return None
    if run.status != jobs.DONE and not partial:
        return None
    read = _READERS.get(run.kind)
    return read(run) if read is not None else None
