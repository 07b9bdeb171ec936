"""Preference data: (prompt, chosen, rejected) triples from the layouts people actually bring.

Accepted, one JSON object per line (JSONL) or one JSON list of objects:

1. Plain strings            {"prompt": "...", "chosen": "...", "rejected": "..."}
2. Chat messages            {"prompt": [{"role": "user", "content": "..."}],
                             "chosen": [{"role": "assistant", "content": "..."}], "rejected": [...]}
   (chosen/rejected may also be the whole conversation, prompt included, with no "prompt" field)
3. Conversation layout      {"conversations": [{"from": "human", "value": "..."}],
                             "chosen": {"from": "gpt", "value": "..."}, "rejected": {"from": "gpt", "value": "..."}}
   ("role"/"content" and "from"/"value" both work; human/user, gpt/assistant, system)

A row that cannot be used (missing field, empty answer, chosen identical to rejected, not JSON) is skipped and
reported with its line number; if no row is usable the error names the expected fields.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from labs.core.errors import DataError
from labs.data import asset, decode_upload


Message = dict  # {"role": "system" | "user" | "assistant", "content": str}

EXPECTED_FIELDS = ('expected "prompt", "chosen", "rejected" (strings or chat-message lists), or '
                   '"conversations" plus "chosen" and "rejected" messages')
MAX_BYTES = 20 * 1024 * 1024  # an upload bigger than this is not a preference set a laptop can tune on
MAX_ROWS = 20_000
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "bot": "assistant",
          "model": "assistant", "system": "system"}
BUNDLED_TRAIN = ("dpo", "plain_vs_jargon_train.jsonl")
BUNDLED_HELDOUT = ("dpo", "plain_vs_jargon_heldout.jsonl")


class PreferenceDataError(DataError):
    """The data cannot be used; the message says what was expected."""


@dataclass(frozen=True)
class PreferencePair:
    """One preference: the conversation so far, the reply people preferred and the one they did not."""
    prompt: tuple[Message, ...]  # the conversation so far, ending with the user's turn
    chosen: str  # the preferred assistant reply
    rejected: str  # the dispreferred assistant reply

    @property
    def prompt_text(self) -> str:
        """The last user turn, for tables."""
        users = [m["content"] for m in self.prompt if m["role"] == "user"]
        return users[-1] if users else self.prompt[-1]["content"]

    def to_json(self) -> dict:
        """As a JSONL row: prompt as a string when it is a single user turn, else the message list."""
        prompt = self.prompt[0]["content"] if len(self.prompt) == 1 and self.prompt[0]["role"] == "user" \
            else [dict(m) for m in self.prompt]
        return {"prompt": prompt, "chosen": self.chosen, "rejected": self.rejected}


@dataclass
class PreferenceSet:
    """Pairs read from one source, and one line per row that was skipped."""
    pairs: list[PreferencePair]
    source: str
    problems: list[str] = field(default_factory=list)  # one line per skipped row

    def __len__(self) -> int:
        return len(self.pairs)


def _message(obj, where: str) -> Message:
    if isinstance(obj, str):
        return {"role": "assistant", "content": obj}
    if not isinstance(obj, dict):
        raise PreferenceDataError(f"{where}: a message must be an object with role/content (or from/value).")
    role = obj.get("role", obj.get("from"))
    content = obj.get("content", obj.get("value"))
    if not isinstance(role, str) or role.lower() not in _ROLES:
        raise PreferenceDataError(f"{where}: unknown role {role!r} (use user/assistant/system or human/gpt).")
    if isinstance(content, list):  # content parts [{"type": "text", "text": ...}]
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise PreferenceDataError(f"{where}: message content must be text.")
    return {"role": _ROLES[role.lower()], "content": content}


def _messages(obj, where: str) -> list[Message]:
    if isinstance(obj, str):
        return [{"role": "user", "content": obj}]
    if isinstance(obj, dict):
        return [_message(obj, where)]
    if isinstance(obj, list) and obj:
        return [_message(m, f"{where}[{i}]") for i, m in enumerate(obj)]
    raise PreferenceDataError(f"{where} must be text or a non-empty list of messages.")


def _reply(obj, where: str) -> tuple[list[Message], str]:
    """A chosen/rejected value -> (messages before the reply, the reply text)."""
    if isinstance(obj, str):
        return [], obj
    msgs = _messages(obj, where) if not isinstance(obj, dict) else [_message(obj, where)]
    if msgs[-1]["role"] != "assistant":
        raise PreferenceDataError(f"{where} must end with an assistant message.")
    return msgs[:-1], msgs[-1]["content"]


def parse_row(row) -> PreferencePair:
    """One record in any accepted layout -> PreferencePair (raises PreferenceDataError naming what is wrong)."""
    if not isinstance(row, dict):
        raise PreferenceDataError(f"not a JSON object; {EXPECTED_FIELDS}")
    missing = [k for k in ("chosen", "rejected") if k not in row]
    if missing:
        raise PreferenceDataError(f"missing {', '.join(repr(m) for m in missing)}; {EXPECTED_FIELDS}")
    chosen_prefix, chosen = _reply(row["chosen"], "chosen")
    rejected_prefix, rejected = _reply(row["rejected"], "rejected")
    if "prompt" in row:
        prompt = _messages(row["prompt"], "prompt")
        prompt += chosen_prefix  # a chosen conversation may carry extra turns after the prompt
    elif "conversations" in row:
        prompt = _messages(row["conversations"], "conversations")
    elif chosen_prefix:
        # Implicit prompt: chosen and rejected are whole conversations sharing everything but the last reply.
        if chosen_prefix != rejected_prefix:
            raise PreferenceDataError("chosen and rejected conversations differ before the last reply, so the "
                                      "prompt is unclear; add a \"prompt\" field.")
        prompt = chosen_prefix
    else:
        raise PreferenceDataError(f"missing 'prompt'; {EXPECTED_FIELDS}")
    if not prompt or prompt[-1]["role"] != "user" or not prompt[-1]["content"].strip():
        raise PreferenceDataError("the prompt is empty or does not end with a user turn.")
    if not chosen.strip() or not rejected.strip():
        raise PreferenceDataError("an empty chosen or rejected answer teaches nothing.")
    if chosen.strip() == rejected.strip():
        raise PreferenceDataError("chosen and rejected are identical, so there is no preference to learn.")
    return PreferencePair(tuple(prompt), chosen.strip(), rejected.strip())


def parse_records(records, source: str) -> PreferenceSet:
    """Pairs from already-decoded rows (dicts); bad rows are listed in `problems`, and PreferenceDataError
    when none is usable."""
    pairs, problems = [], []
    for i, row in enumerate(records, 1):
        try:
            pairs.append(parse_row(row))
        except PreferenceDataError as exc:
            problems.append(f"row {i}: {exc}")
    if not pairs:
        first = f" First problem: {problems[0]}." if problems else ""
        raise PreferenceDataError(f"No usable preference pairs in {source}: {EXPECTED_FIELDS}.{first}")
    return PreferenceSet(pairs, source, problems)


def parse_text(text: str, source: str = "the upload") -> PreferenceSet:
    """JSONL (one object per line) or a JSON list of objects."""
    if len(text.encode("utf-8", errors="ignore")) > MAX_BYTES:
        raise PreferenceDataError(f"{source} is larger than {MAX_BYTES // 2**20} MB; upload a smaller sample.")
    stripped = text.strip()
    if not stripped:
        raise PreferenceDataError(f"{source} is empty; {EXPECTED_FIELDS}.")
    if stripped.startswith("["):
        try:
            records = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise PreferenceDataError(f"{source} looks like a JSON list but does not parse: {exc}.") from None
        if len(records) > MAX_ROWS:
            raise PreferenceDataError(f"{source} has {len(records)} rows; at most {MAX_ROWS} are accepted.")
        return parse_records(records, source)
    pairs, problems = [], []
    for n, line in enumerate(stripped.splitlines(), 1):
        if not line.strip():
            continue
        if len(pairs) + len(problems) >= MAX_ROWS:
            problems.append(f"only the first {MAX_ROWS} rows were read.")
            break
        try:
            pairs.append(parse_row(json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not valid JSON ({exc.msg}).")
        except PreferenceDataError as exc:
            problems.append(f"line {n}: {exc}")
    if not pairs:
        first = f" First problem: {problems[0]}" if problems else ""
        raise PreferenceDataError(f"No usable preference pairs in {source}: one JSON object per line (JSONL), "
                                  f"{EXPECTED_FIELDS}.{first}")
    return PreferenceSet(pairs, source, problems)


def parse_bytes(data: bytes, source: str = "the upload") -> PreferenceSet:
    """Pairs from an uploaded JSONL file's bytes (size and encoding checked first)."""
    text = decode_upload(data, name=source, max_bytes=MAX_BYTES, error=PreferenceDataError,
                         encoding_hint="Save it as .jsonl (UTF-8).")
    return parse_text(text, source)


def load_jsonl(path: str | Path) -> PreferenceSet:
    """Pairs from a JSONL file on disk."""
    path = Path(path)
    return parse_bytes(path.read_bytes(), path.name)


def bundled() -> tuple[PreferenceSet, PreferenceSet]:
    """The project's own set (plain, friendly answers preferred over jargon-dense ones): (train, held-out)."""
    return load_jsonl(asset(*BUNDLED_TRAIN)), load_jsonl(asset(*BUNDLED_HELDOUT))


def split(pairs: list[PreferencePair], heldout_fraction: float = 0.15, seed: int = 0
          ) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """A reproducible train / held-out split (at least one pair on each side when there are two or more)."""
    if len(pairs) < 2:
        return list(pairs), []
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_held = min(max(1, round(len(pairs) * heldout_fraction)), len(pairs) - 1)
    held = sorted(order[:n_held])
    keep = sorted(order[n_held:])
    return [pairs[i] for i in keep], [pairs[i] for i in held]


def fingerprint(pairs: list[PreferencePair]) -> str:
    """A short hash of the data, so a run's config names exactly what it trained on."""
    blob = json.dumps([p.to_json() for p in pairs], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def to_jsonl(pairs: list[PreferencePair]) -> str:
    """Pairs as JSONL text, one `to_json` row a line (readable again by `parse_bytes`)."""
    return "".join(json.dumps(p.to_json(), ensure_ascii=False) + "\n" for p in pairs)
