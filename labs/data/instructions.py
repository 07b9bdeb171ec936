"""Instruction data: Alpaca rows and ShareGPT / LIMA conversations -> one `Example` shape.

Accepted inputs (JSON array or JSON Lines; a top-level {"data": [...]} wrapper is unwrapped):

| format                  | one row                                                                  |
|-------------------------|--------------------------------------------------------------------------|
| Alpaca                  | {"instruction": "...", "input": "" (optional), "output": "..."}          |
| ShareGPT                | {"conversations": [{"from": "human", "value": ...}, {"from": "gpt", ...}]} |
| OpenAI / HF messages    | {"messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}]} |
| LIMA                    | {"conversations": ["user turn", "assistant turn", ...]}                  |

A conversation becomes one example: its last assistant turn is the response, the user turn before it the
instruction, anything earlier the history. Rows that cannot be used are skipped and counted by reason.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from labs.core.errors import DataError
from labs.data import asset, decode_upload


MAX_BYTES = 20 * 1024 * 1024  # 20 MB: plenty for a lesson, small enough for a 2-core laptop

_USER = {"human", "user", "prompter", "question"}
_ASSISTANT = {"gpt", "assistant", "bot", "model", "chatgpt", "answer"}
_SYSTEM = {"system"}


class InstructionFormatError(DataError):
    """The file cannot be read as instruction data; the message says what is expected."""


@dataclass(frozen=True)
class Example:
    """One instruction-tuning example: the instruction (with optional input, system prompt and earlier turns)
    and the output the model should learn to write."""
    instruction: str
    output: str
    input: str = ""
    system: str = ""
    history: tuple[tuple[str, str], ...] = ()  # earlier (role, content) turns of a conversation
    family: str = ""  # the bundled set's task family (for per-family scores); "" for uploads

    def messages(self) -> list[dict]:
        """The prompt as chat messages (system, history, then the instruction with its input)."""
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        msgs += [{"role": r, "content": c} for r, c in self.history]
        user = self.instruction if not self.input else f"{self.instruction}\n\n{self.input}"
        return msgs + [{"role": "user", "content": user}]


@dataclass
class LoadResult:
    """What a file gave: the examples, the format it was read as, and how many rows were skipped and why."""
    examples: list[Example]
    format: str  # "alpaca", "sharegpt", "messages", "lima"
    skipped: Counter = field(default_factory=Counter)  # reason -> rows

    def skipped_text(self) -> str:
        """The skipped rows in words, most common reason first ('<rows> <reason>; …')."""
        return "; ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())


def _decode(data: bytes | str) -> str:
    return decode_upload(data, max_bytes=MAX_BYTES, error=InstructionFormatError,
                         size_hint="Upload a smaller sample (a few thousand rows teach a format — LIMA used 1,000).",
                         encoding_hint="Save it as UTF-8 JSON or JSON Lines and upload again.")


def _rows(text: str) -> list:
    text = text.strip()
    if not text:
        raise InstructionFormatError("The file is empty.")
    if text[0] in "[{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None  # maybe JSON Lines
        if isinstance(data, dict):
            for key in ("data", "examples", "rows", "train"):
                if isinstance(data.get(key), list):
                    return data[key]
            return [data]
        if isinstance(data, list):
            return data
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InstructionFormatError(f"Line {n} is not valid JSON ({exc.msg}). Expected a JSON array or one JSON "
                                         "object per line (JSON Lines).") from None
    return rows


def _detect(rows: list) -> str:
    for row in rows[:50]:
        if not isinstance(row, dict):
            continue
        if "instruction" in row or "output" in row:
            return "alpaca"
        conv = row.get("conversations", row.get("messages"))
        if isinstance(conv, list) and conv:
            first = conv[0]
            if isinstance(first, str):
                return "lima"
            if isinstance(first, dict) and "from" in first:
                return "sharegpt"
            if isinstance(first, dict) and "role" in first:
                return "messages"
    keys = sorted({k for r in rows[:20] if isinstance(r, dict) for k in r})
    raise InstructionFormatError(
        "Unrecognised instruction format" + (f" (fields found: {', '.join(keys[:12])})" if keys else "") + ". Expected "
        "Alpaca rows with 'instruction', optional 'input' and 'output', or conversations: 'conversations' with "
        "from/value turns (ShareGPT), 'messages' with role/content turns, or a list of strings (LIMA).")


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _from_turns(turns: list[tuple[str, str]]) -> tuple[Example | None, str]:
    """(role, content) turns -> an Example ending at the last assistant turn, or (None, reason)."""
    system = " ".join(c for r, c in turns if r == "system")
    turns = [(r, c) for r, c in turns if r != "system"]
    while turns and turns[-1][0] != "assistant":
        turns = turns[:-1]
    if len(turns) < 2:
        return None, "without an assistant reply"
    if turns[-2][0] != "user":
        return None, "where the reply does not follow a user turn"
    if not turns[-1][1]:
        return None, "with an empty reply"
    if not turns[-2][1]:
        return None, "with an empty user turn"
    return Example(instruction=turns[-2][1], output=turns[-1][1], system=system, history=tuple(turns[:-2])), ""


def _role(raw) -> str:
    raw = str(raw).strip().lower()
    if raw in _USER:
        return "user"
    if raw in _ASSISTANT:
        return "assistant"
    if raw in _SYSTEM:
        return "system"
    return ""


def parse(data: bytes | str, limit: int | None = None) -> LoadResult:
    """Parse uploaded bytes (or text). Raises InstructionFormatError when nothing usable is found."""
    rows = _rows(_decode(data))
    if not rows:
        raise InstructionFormatError("The file holds no rows.")
    fmt = _detect(rows)
    examples, skipped = [], Counter()
    for row in rows:
        if limit is not None and len(examples) >= limit:
            break
        if not isinstance(row, dict):
            skipped["rows that are not JSON objects"] += 1
            continue
        if fmt == "alpaca":
            instruction, output = _text(row.get("instruction")), _text(row.get("output"))
            if "instruction" not in row or "output" not in row:
                skipped["missing 'instruction' or 'output'"] += 1
            elif not instruction:
                skipped["with an empty instruction"] += 1
            elif not output:
                skipped["with an empty output"] += 1
            else:
                examples.append(Example(instruction, output, _text(row.get("input")), family=_text(row.get("family"))))
            continue
        conv = row.get("conversations", row.get("messages"))
        if not isinstance(conv, list):
            skipped["without a 'conversations' list"] += 1
            continue
        if fmt == "lima":
            turns = [("user" if i % 2 == 0 else "assistant", _text(t)) for i, t in enumerate(conv)]
        else:
            key_role, key_text = ("from", "value") if fmt == "sharegpt" else ("role", "content")
            turns = [(_role(t.get(key_role)), _text(t.get(key_text))) for t in conv if isinstance(t, dict)]
            if any(not r for r, _ in turns):
                skipped["with unknown speaker roles"] += 1
                continue
        example, reason = _from_turns(turns)
        if example is None:
            skipped[f"conversations {reason}"] += 1
        else:
            examples.append(example)
    if not examples:
        detail = "; ".join(f"{n} {r}" for r, n in skipped.most_common())
        raise InstructionFormatError(f"No usable examples in the file ({detail or 'no rows'}). Each row needs a "
                                     "non-empty instruction and a non-empty response.")
    return LoadResult(examples, fmt, skipped)


def load_file(path: str | Path, limit: int | None = None) -> LoadResult:
    """`parse` on a file's bytes (at most `limit` examples)."""
    return parse(Path(path).read_bytes(), limit=limit)


BUNDLED_TRAIN = ("sft", "instructions_train.jsonl")
BUNDLED_HELDOUT = ("sft", "instructions_heldout.jsonl")


def bundled() -> tuple[list[Example], list[Example]]:
    """The project's TL;DR instruction set: (train, held-out) — see assets/sft/README.md."""
    return load_file(asset(*BUNDLED_TRAIN)).examples, load_file(asset(*BUNDLED_HELDOUT)).examples


def split(examples: list[Example], heldout_fraction: float = 0.15, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """A deterministic train / held-out split for uploaded data (at least one held-out example)."""
    if len(examples) < 2:
        raise InstructionFormatError("At least two examples are needed: one to train on and one to hold out.")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_held = min(max(1, round(len(examples) * heldout_fraction)), len(examples) - 1)
    held = set(order[:n_held])
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]
