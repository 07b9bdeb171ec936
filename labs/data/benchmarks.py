"""Loaders for multiple-choice benchmarks: MMLU CSV, HellaSwag-style JSONL, and the bundled mini benchmark.

Every loader returns a list of `MCItem`. Anything a user can get wrong (wrong column count, an answer outside
A–D, an empty choice, a file that is not UTF-8, a file with nothing in it) raises `BenchmarkError` whose message
names the row and says how to fix it.

MMLU CSV (Hendrycks et al. 2021, the files in data/dev and data/test), one question per row, no header:

    What is 7 x 8?,54,56,58,64,B

CSVs are accepted as found elsewhere too: a header row that names the columns (`question,A,B,C,D,answer`,
`question,choice0,choice1,choice2,choice3,answer`, `prompt,option_a,...,option_d,label`, a `choices` list column,
an optional `subject` column, other columns ignored), answers as letters A–D (any case) or indices 0–3.
`read_mmlu_csv` also says which columns it used, so the page can show it.

HellaSwag JSONL (Zellers et al. 2019), one object per line:

    {"ctx": "A man is sitting on a roof. He", "endings": ["is using wrap ...", "..."], "label": 3,
     "activity_label": "Roofing shingle removal"}
"""
from __future__ import annotations

import ast
import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from labs.core.errors import DataError
from labs.data import asset, decode_upload


LETTERS = "ABCD"
MAX_BYTES = 20 * 1024 * 1024  # 20 MB: ~100k MMLU rows; larger is almost certainly the wrong file
MAX_ITEMS = 50_000
BUNDLED_DIR = ("eval", "mini_mmlu")


class BenchmarkError(DataError):
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


# Column names accepted in a header row (compared after lower-casing and dropping spaces, '_', '-', '.', '()').
QUESTION_NAMES = ("question", "prompt", "input", "query", "stem", "questiontext", "q")
ANSWER_NAMES = ("answer", "label", "target", "gold", "correct", "correctanswer", "answerkey", "answerindex",
                "answeridx", "correctoption", "key")
SUBJECT_NAMES = ("subject", "category", "topic", "task")
CHOICE_PREFIXES = ("", "choice", "choices", "option", "options", "opt", "answer", "ans", "ending", "endings")
CHOICE_SUFFIXES = (("a", "b", "c", "d"), ("0", "1", "2", "3"), ("1", "2", "3", "4"))
LIST_NAMES = ("choices", "options", "endings")  # one column holding a list: ["Paris", "Rome", "Oslo", "Bern"]
ACCEPTED_LAYOUTS = ("question,A,B,C,D,answer (no header, as MMLU ships it), or a header row naming a question "
                    "column (question/prompt), four choice columns (A..D, choice0..choice3, option_a..option_d, "
                    "...) or one 'choices' list column, and an answer column (answer/label/target); "
                    "answers as letters A–D or indices 0–3")


def _norm(cell: str) -> str:
    return "".join(ch for ch in cell.strip().lower() if ch not in " _-.()[]")


@dataclass(frozen=True)
class CsvLayout:
    """Which columns of an MMLU-style CSV hold what, and how the page describes it."""

    header: tuple[str, ...] | None  # the header row as written, or None (MMLU's own files have none)
    question: int
    choices: tuple[int, ...]  # four column indices, or one index of a list column
    answer: int
    subject: int | None = None

    @property
    def width(self) -> int:
        """Columns a row must have: the header's length, or 6 (question, A–D, answer) without a header."""
        return len(self.header) if self.header else 6

    def describe(self, answer_kinds: set[str] = frozenset()) -> str:
        """How the columns were read, in one sentence for the page (`answer_kinds`: how answers were written)."""
        kinds = " and ".join(sorted(answer_kinds)) or "letters A–D or indices 0–3"
        if self.header is None:
            return f"No header row: columns read by position as question, A, B, C, D, answer (answers as {kinds})."
        name = lambda i: f"'{self.header[i]}'"  # noqa: E731
        choices = (f"choices ← {name(self.choices[0])} (a list)" if len(self.choices) == 1
                   else "choices A–D ← " + ", ".join(name(i) for i in self.choices))
        used = {self.question, self.answer, *self.choices} | ({self.subject} if self.subject is not None else set())
        ignored = [self.header[i] for i in range(len(self.header)) if i not in used and self.header[i].strip()]
        return (f"Header row: question ← {name(self.question)}, {choices}, answer ← {name(self.answer)} "
                f"(answers as {kinds})" + (f", subject ← {name(self.subject)}" if self.subject is not None else "")
                + (f"; ignored: {', '.join(repr(c) for c in ignored)}" if ignored else "") + ".")


def _find(names: list[str], wanted: tuple[str, ...]) -> int | None:
    return next((names.index(w) for w in wanted if w in names), None)


def header_layout(row: list[str]) -> CsvLayout | None:
    """The layout a header row names, or None when the row does not name a question and an answer column."""
    names = [_norm(c) for c in row]
    question, answer = _find(names, QUESTION_NAMES), _find(names, ANSWER_NAMES)
    if question is None or answer is None:
        return None
    choices = None
    for suffixes in CHOICE_SUFFIXES:
        for prefix in CHOICE_PREFIXES:
            cols = [prefix + s for s in suffixes]
            if all(c in names for c in cols) and answer not in [names.index(c) for c in cols]:
                choices = tuple(names.index(c) for c in cols)
                break
        if choices:
            break
    if choices is None:
        listed = _find(names, LIST_NAMES)
        if listed is None:
            return None
        choices = (listed,)
    return CsvLayout(tuple(c.strip() for c in row), question, choices, answer, _find(names, SUBJECT_NAMES))


def _names_a_column(row: list[str]) -> bool:
    """Whether a row that is not a valid question names any column this loader knows (so it is a header)."""
    known = set(QUESTION_NAMES + ANSWER_NAMES + SUBJECT_NAMES + LIST_NAMES)
    known |= {p + s for p in CHOICE_PREFIXES for suffixes in CHOICE_SUFFIXES for s in suffixes if p}
    return any(_norm(c) in known for c in row)


def parse_answer(cell: str) -> tuple[int, str] | None:
    """'B' / 'b' -> (1, 'letters A–D'); '1' -> (1, 'indices 0–3'); anything else -> None."""
    cell = cell.strip()
    if len(cell) == 1 and cell.upper() in LETTERS:
        return LETTERS.index(cell.upper()), "letters A–D"
    if re.fullmatch(r"[0-3](\.0)?", cell):
        return int(float(cell)), "indices 0–3"
    return None


def _list_cell(cell: str) -> list[str] | None:
    """A choices cell written as a JSON or Python list of strings."""
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(cell)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
            return [str(v).strip() for v in value]
    return None


@dataclass
class LoadedBenchmark:
    """Items and a sentence saying how the file was read (which columns; the page shows it)."""

    items: list[MCItem]
    columns: str = ""


def read_mmlu_csv(data: bytes | str, subject: str = "uploaded", name: str = "the CSV",
                  id_prefix: str = "") -> LoadedBenchmark:
    """Parse an MMLU-style CSV as found: with or without a header row, answers as letters or indices 0–3."""
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
    layout = header_layout(rows[0][1])
    if layout is not None:
        rows = rows[1:]
        if not rows:
            raise BenchmarkError(f"{name} has a header row but no questions under it.")
    else:
        first = rows[0][1]
        if not (len(first) == 6 and parse_answer(first[5]) is not None) and _names_a_column(first):
            raise BenchmarkError(
                f"{name}: row 1 looks like a header, but its columns ({', '.join(repr(c.strip()) for c in first)}) "
                f"are not ones this loader knows. Accepted: {ACCEPTED_LAYOUTS}.")
        layout = CsvLayout(None, 0, (1, 2, 3, 4), 5)
    if len(rows) > MAX_ITEMS:
        raise BenchmarkError(f"{name} has {len(rows):,} questions; the limit is {MAX_ITEMS:,}. Upload a subset.")
    items, kinds = [], set()
    expected = layout.width
    for line, row in rows:
        if len(row) != expected:
            what = ",".join(layout.header) if layout.header else "question,A,B,C,D,answer"
            raise BenchmarkError(f"{name}, row {line}: {len(row)} columns, expected {expected} ({what}). "
                                 "Quote fields that contain commas.")
        cells = [c.strip() for c in row]
        question = cells[layout.question]
        if len(layout.choices) == 1:
            choices = _list_cell(cells[layout.choices[0]])
            if choices is None or len(choices) != 4:
                raise BenchmarkError(f"{name}, row {line}: the choices column must hold a list of four answers, "
                                     f"like [\"Paris\", \"Rome\", \"Oslo\", \"Bern\"]; it holds "
                                     f"'{cells[layout.choices[0]][:60]}'.")
        else:
            choices = [cells[i] for i in layout.choices]
        if not question:
            raise BenchmarkError(f"{name}, row {line}: the question is empty.")
        for letter, choice in zip(LETTERS, choices):
            if not choice:
                raise BenchmarkError(f"{name}, row {line}: choice {letter} is empty; every question needs four choices.")
        parsed = parse_answer(cells[layout.answer])
        if parsed is None:
            hint = (" If your answers count from 1, subtract 1 (0 = A)." if cells[layout.answer] == "4" else "")
            header_hint = (" If row 1 is a header, name its columns (e.g. question,A,B,C,D,answer)."
                           if line == 1 and layout.header is None else "")
            raise BenchmarkError(f"{name}, row {line}: the answer is '{cells[layout.answer]}', but it must be one "
                                 f"letter A, B, C or D, or an index 0, 1, 2 or 3.{hint}{header_hint}")
        answer, kind = parsed
        kinds.add(kind)
        sub = (cells[layout.subject] if layout.subject is not None else "") or subject
        items.append(MCItem(id=f"{id_prefix}{sub}-{len(items)}", subject=sub, prompt=question, choices=tuple(choices),
                            answer=answer))
    return LoadedBenchmark(items, layout.describe(kinds))


def load_mmlu_csv(data: bytes | str, subject: str = "uploaded", name: str = "the CSV", id_prefix: str = "") -> list[MCItem]:
    """The items of an MMLU-style CSV (see read_mmlu_csv for the layouts accepted)."""
    return read_mmlu_csv(data, subject, name, id_prefix).items


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


def read_upload(data: bytes, filename: str, id_prefix: str = "") -> LoadedBenchmark:
    """Pick the loader from the file name (.csv -> MMLU, .jsonl/.json -> HellaSwag-style) and say how it was read."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        return read_mmlu_csv(data, subject=Path(filename).stem.removesuffix("_test").removesuffix("_dev") or "uploaded",
                             name=filename, id_prefix=id_prefix)
    if suffix in (".jsonl", ".json"):
        items = load_hellaswag_jsonl(data, name=filename)
        if id_prefix:
            items = [MCItem(f"{id_prefix}{i.id}", i.subject, i.prompt, i.choices, i.answer, i.style) for i in items]
        return LoadedBenchmark(items, "HellaSwag-style JSONL: context ← 'ctx' (or 'ctx_a' + 'ctx_b'), choices ← "
                                      "'endings', answer ← 'label' (an index).")
    raise BenchmarkError(f"{filename}: upload an MMLU-style .csv or a HellaSwag-style .jsonl file.")


def load_upload(data: bytes, filename: str) -> list[MCItem]:
    """The items of an uploaded benchmark file (see read_upload)."""
    return read_upload(data, filename).items


def bundled_root() -> Path:
    """The bundled mini-MMLU folder in assets/ (dev/ and test/ CSVs per subject)."""
    return asset(*BUNDLED_DIR)


def bundled_subjects() -> list[str]:
    """Subjects of the bundled mini-MMLU test split, sorted."""
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


DEV_POOL_DIR = ("eval", "dev_pool")


def load_dev_pool(style: str = "mmlu") -> list[MCItem]:
    """Solved examples for k-shot prompts when an upload comes without its own dev file (lm-evaluation-harness
    draws few-shot examples from a separate split, never from the scored one).

    mmlu: the bundled mini benchmark's dev split (30 questions, 6 subjects); continuation: a few HellaSwag-style
    items written for this project (assets/eval/dev_pool/continuation_dev.jsonl)."""
    if style == "continuation":
        path = asset(*DEV_POOL_DIR, "continuation_dev.jsonl")
        items = load_hellaswag_jsonl(path.read_bytes(), name=path.name)
        return [MCItem(f"dev/{i.id}", i.subject, i.prompt, i.choices, i.answer, i.style) for i in items]
    return load_bundled("dev")


def shot_pool(items: list[MCItem], dev: list[MCItem]) -> tuple[list[MCItem], int]:
    """The dev items that may serve as k-shot examples for `items`: those whose question is not also scored.
    Returns (pool, how many dev items were left out because they appear among the scored items)."""
    scored = {i.prompt.strip().lower() for i in items}
    pool = [d for d in dev if d.prompt.strip().lower() not in scored]
    return pool, len(dev) - len(pool)


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
    """The bundled short-answer questions (assets/eval/qa.jsonl) as rows {prompt, answer, …}."""
    path = asset("eval", "qa.jsonl")
    return load_generative(path.read_bytes(), name=path.name)
