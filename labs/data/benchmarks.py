"""Loaders for multiple-choice benchmarks: MMLU CSV, HellaSwag-style JSONL, and the bundled mini benchmark.

Every loader returns a list of `MCItem`. Anything a user can get wrong (wrong column count, an answer outside
A–D, an empty choice, a file that is not UTF-8, a file with nothing in it) raises `BenchmarkError` whose message
names the row and says how to fix it.

MMLU CSV (Hendrycks et al. 2021, the files in data/dev and data/test), one question per row, no header:

    What is 7 x 8?,54,56,58,64,B

A header row `question,A,B,C,D,answer` is accepted, and with a header an extra `subject` column too.

HellaSwag JSONL (Zellers et al. 2019), one object per line:

    {"ctx": "A man is sitting on a roof. He", "endings": ["is using wrap ...", "..."], "label": 3,
     "activity_label": "Roofing shingle removal"}
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from labs.data import asset, decode_upload

LETTERS = "ABCD"
MAX_BYTES = 20 * 1024 * 1024  # 20 MB: ~100k MMLU rows; larger is almost certainly the wrong file
MAX_ITEMS = 50_000
BUNDLED_DIR = ("eval", "mini_mmlu")


class BenchmarkError(ValueError):
    """A benchmark file a user can fix; the message says where and how."""


@dataclass(frozen=True)
class MCItem:
    """One multiple-choice question. `prompt` is the question (MMLU) or the context to continue (HellaSwag)."""

    id: str
    subject: str
    prompt: str
    choices: tuple[str, ...]
    answer: int  # index into choices
    style: str = "mmlu"  # "mmlu" (question + lettered options) or "continuation" (HellaSwag: score the endings)
    meta: dict = field(default_factory=dict, compare=False, hash=False)


def decode(data: bytes | str, name: str = "the file") -> str:
    """Bytes -> text; UTF-8 (with or without a BOM) only, with a message that says how to fix anything else."""
    return decode_upload(data, name=name, max_bytes=MAX_BYTES, error=BenchmarkError,
                         size_hint="Upload a subset (a few thousand questions are plenty for a confidence interval).",
                         encoding_hint="Save it as UTF-8 (in Excel: 'CSV UTF-8'; in an editor: 'Save with encoding "
                                       "UTF-8') and upload it again.")


def subject_name(subject: str) -> str:
    """'high_school_physics' -> 'high school physics' (how MMLU's prompt names a subject)."""
    return subject.replace("_", " ").strip()


def _is_header(row: list[str]) -> bool:
    cells = [c.strip().lower() for c in row]
    return len(cells) >= 6 and cells[0] == "question" and cells[1:5] == ["a", "b", "c", "d"]


def load_mmlu_csv(data: bytes | str, subject: str = "uploaded", name: str = "the CSV", id_prefix: str = "") -> list[MCItem]:
    """Parse an MMLU-format CSV: question,A,B,C,D,answer (answer is a letter A–D), with or without a header."""
    text = decode(data, name)
    if not text.strip():
        raise BenchmarkError(f"{name} is empty. Each row needs: question,A,B,C,D,answer (e.g. 'What is 2+2?,3,4,5,6,B').")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise BenchmarkError(f"{name} is not valid CSV ({exc}). Quote fields that contain commas or line breaks.") from None
    rows = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not rows:
        raise BenchmarkError(f"{name} has no rows.")
    subject_col = None
    if _is_header(rows[0][1]):
        header = [c.strip().lower() for c in rows[0][1]]
        rows = rows[1:]
        expected = 6 + ("subject" in header)
        if "subject" in header:
            subject_col = header.index("subject")
    else:
        expected = 6
    if len(rows) > MAX_ITEMS:
        raise BenchmarkError(f"{name} has {len(rows):,} questions; the limit is {MAX_ITEMS:,}. Upload a subset.")
    items = []
    for line, row in rows:
        if len(row) != expected:
            raise BenchmarkError(
                f"{name}, row {line}: {len(row)} columns, expected {expected} (question,A,B,C,D,answer"
                f"{',subject' if subject_col is not None else ''}). Quote fields that contain commas.")
        cells = [c.strip() for c in row]
        sub = cells[subject_col] if subject_col is not None else subject
        if subject_col is not None:
            cells = cells[:subject_col] + cells[subject_col + 1:]
        question, choices, answer = cells[0], cells[1:5], cells[5].upper()
        if not question:
            raise BenchmarkError(f"{name}, row {line}: the question is empty.")
        for letter, choice in zip(LETTERS, choices):
            if not choice:
                raise BenchmarkError(f"{name}, row {line}: choice {letter} is empty; every question needs four choices.")
        if answer not in LETTERS or len(answer) != 1:
            raise BenchmarkError(f"{name}, row {line}: the answer is '{cells[5]}', but it must be one letter A, B, C or D.")
        items.append(MCItem(id=f"{id_prefix}{sub}-{len(items)}", subject=sub or subject, prompt=question, choices=tuple(choices),
                            answer=LETTERS.index(answer)))
    return items


def _hellaswag_clean(text: str) -> str:
    """lm-evaluation-harness's HellaSwag preprocess: WikiHow '[title]' markers become sentence breaks."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def load_hellaswag_jsonl(data: bytes | str, name: str = "the JSONL") -> list[MCItem]:
    """Parse HellaSwag-style JSONL: a context ('ctx', or 'ctx_a' + 'ctx_b', or 'context'), 'endings', 'label'."""
    text = decode(data, name)
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise BenchmarkError(f"{name} is empty. Each line needs a JSON object with ctx, endings and label.")
    if len(lines) > MAX_ITEMS:
        raise BenchmarkError(f"{name} has {len(lines):,} lines; the limit is {MAX_ITEMS:,}. Upload a subset.")
    items = []
    for line, raw in lines:
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise BenchmarkError(f"{name}, line {line}: not valid JSON ({exc.args[0][:80]}).") from None
        if not isinstance(obj, dict):
            raise BenchmarkError(f"{name}, line {line}: expected a JSON object {{\"ctx\": ..., \"endings\": [...], \"label\": 0}}.")
        if "ctx_a" in obj:
            ctx_b = str(obj.get("ctx_b", ""))
            context = str(obj["ctx_a"]) + " " + ctx_b[:1].upper() + ctx_b[1:]
        else:
            context = str(obj.get("ctx", obj.get("context", "")))
        endings = obj.get("endings")
        if not context.strip():
            raise BenchmarkError(f"{name}, line {line}: the context ('ctx') is empty.")
        if not isinstance(endings, list) or len(endings) < 2:
            raise BenchmarkError(f"{name}, line {line}: 'endings' must be a list of at least two strings.")
        endings = [_hellaswag_clean(str(e)) for e in endings]
        if any(not e for e in endings):
            raise BenchmarkError(f"{name}, line {line}: one of the endings is empty.")
        try:
            label = int(obj.get("label"))
        except (TypeError, ValueError):
            raise BenchmarkError(f"{name}, line {line}: 'label' must be the index of the right ending (0..{len(endings) - 1}).") from None
        if not 0 <= label < len(endings):
            raise BenchmarkError(f"{name}, line {line}: label {label} is outside 0..{len(endings) - 1}.")
        activity = str(obj.get("activity_label", "hellaswag")).strip() or "hellaswag"
        prompt = _hellaswag_clean(f"{activity}: {context}") if "activity_label" in obj else _hellaswag_clean(context)
        items.append(MCItem(id=f"hs-{len(items)}", subject=activity, prompt=prompt, choices=tuple(endings),
                            answer=label, style="continuation"))
    return items


def load_upload(data: bytes, filename: str) -> list[MCItem]:
    """Pick the loader from the file name: .csv -> MMLU, .jsonl/.json -> HellaSwag-style."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        return load_mmlu_csv(data, subject=Path(filename).stem.removesuffix("_test").removesuffix("_dev") or "uploaded",
                             name=filename)
    if suffix in (".jsonl", ".json"):
        return load_hellaswag_jsonl(data, name=filename)
    raise BenchmarkError(f"{filename}: upload an MMLU-style .csv or a HellaSwag-style .jsonl file.")


def bundled_root() -> Path:
    return asset(*BUNDLED_DIR)


def bundled_subjects() -> list[str]:
    return sorted(p.name.removesuffix("_test.csv") for p in (bundled_root() / "test").glob("*_test.csv"))


def load_bundled(split: str = "test", subjects: list[str] | None = None) -> list[MCItem]:
    """The mini benchmark written for this project, MMLU layout: assets/eval/mini_mmlu/{dev,test}/<subject>_<split>.csv."""
    if split not in ("dev", "test"):
        raise BenchmarkError("split must be 'dev' or 'test'.")
    items = []
    for subject in subjects or bundled_subjects():
        path = bundled_root() / split / f"{subject}_{split}.csv"
        if not path.exists():
            raise BenchmarkError(f"The bundled benchmark has no subject '{subject}' ({path.name} is missing).")
        items += load_mmlu_csv(path.read_bytes(), subject=subject, name=path.name, id_prefix=f"{split}/")
    return items


def load_generative(data: bytes | str, name: str = "the JSONL") -> list[dict]:
    """Prompt/answer pairs for generative evaluation: {"prompt": ..., "answer": ..., "pattern": optional regex}."""
    text = decode(data, name)
    rows = []
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            raise BenchmarkError(f"{name}, line {line}: not valid JSON.") from None
        if not isinstance(obj, dict) or not str(obj.get("prompt", "")).strip() or not str(obj.get("answer", "")).strip():
            raise BenchmarkError(f"{name}, line {line}: needs a non-empty \"prompt\" and \"answer\".")
        if obj.get("pattern"):
            try:
                re.compile(obj["pattern"])
            except re.error as exc:
                raise BenchmarkError(f"{name}, line {line}: the regex pattern is invalid ({exc}).") from None
        rows.append({"prompt": str(obj["prompt"]).strip(), "answer": str(obj["answer"]).strip(),
                     "pattern": obj.get("pattern") or "", "subject": obj.get("subject", "")})
    if not rows:
        raise BenchmarkError(f"{name} has no prompt/answer pairs.")
    return rows


def load_bundled_generative() -> list[dict]:
    path = asset("eval", "qa.jsonl")
    return load_generative(path.read_bytes(), name=path.name)
