"""Text domains for the data-mixtures lab: real text that is on every machine that runs Python, plus uploads.

| domain      | what                                                                 | where it comes from               |
|-------------|----------------------------------------------------------------------|-----------------------------------|
| code        | Python functions and classes, docstrings and comments stripped       | the installed standard library     |
| prose       | English prose: the docstrings of the same modules                    | the installed standard library     |
| arithmetic  | "417 + 38 = 455" lines: a perfectly learnable, low-entropy domain     | generated here from a fixed seed   |
| (uploads)   | a .txt file (split into paragraphs) or .jsonl with a "text" field    | the user                           |

Each domain is a list of documents (strings). The train / validation split is by document (a hash of its
text), so validation text is never seen in training, whichever mixture or filter is used.
"""
from __future__ import annotations

import ast
import hashlib
import json
import random
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path

BUILTIN_DOMAINS = ("code", "prose", "arithmetic")
DOMAIN_HELP = {
    "code": "Python source of the installed standard library (functions and classes, docstrings stripped).",
    "prose": "English prose: the docstrings of the standard library's modules, classes and functions.",
    "arithmetic": "Generated sums and products like '417 + 38 = 455': fully predictable once learned.",
}
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a 2-core laptop trains on a few hundred KB; bigger files only slow parsing
_CAP_BYTES = 600_000  # per built-in domain: far more than a one-minute run can read once


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if not p.name.startswith(("_", "test")))
    if not files:
        raise FileNotFoundError(f"No Python standard-library sources under {root}; the code and prose domains "
                                "need them (some minimal Python installs ship only .pyc files).")
    return files


def _strip_docstring(node: ast.AST) -> None:
    for child in ast.walk(node):
        body = getattr(child, "body", None)
        if (isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and body
                and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            child.body = body[1:] or [ast.Pass()]


@lru_cache(maxsize=1)
def _stdlib_documents() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(code documents, prose documents) from the standard library, in a fixed order; cached on disk."""
    from labs import settings

    cache = settings.subdir("mixtures") / f"stdlib-corpora-{python_version()}.json"
    try:
        code, prose = json.loads(cache.read_text())
        return tuple(code), tuple(prose)
    except (OSError, ValueError):
        pass
    code, prose = [], []
    files = _stdlib_files()
    random.Random(0).shuffle(files)  # many modules, not the first ones alphabetically
    for path in files:
        if sum(map(len, code)) > 2 * _CAP_BYTES and sum(map(len, prose)) > 2 * _CAP_BYTES:
            break  # enough to fill both caps: parsing the rest only costs time
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    prose.append(doc.strip())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                _strip_docstring(node)
                code.append(ast.unparse(node))
    rng = random.Random(0)
    rng.shuffle(code)
    rng.shuffle(prose)
    code, prose = _cap(code), _cap(prose)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps([code, prose]))
    tmp.replace(cache)
    return tuple(code), tuple(prose)


def _cap(docs: list[str], cap: int = _CAP_BYTES) -> list[str]:
    out, total = [], 0
    for d in docs:
        if total >= cap:
            break
        out.append(d)
        total += len(d.encode())
    return out


@lru_cache(maxsize=4)
def _arithmetic(n: int, seed: int) -> tuple[str, ...]:
    return tuple(arithmetic_documents(n, seed))


def arithmetic_documents(n: int = 4000, seed: int = 0) -> list[str]:
    """Documents of 8 equations each: 'a + b = c' and 'a * b = c' with small numbers, exact answers."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        lines = []
        for _ in range(8):
            a, b = rng.randint(0, 999), rng.randint(0, 99)
            lines.append(f"{a} + {b} = {a + b}" if rng.random() < 0.7 else f"{a} * {b % 10} = {a * (b % 10)}")
        docs.append("\n".join(lines))
    return docs


def builtin_documents(domain: str) -> list[str]:
    """The documents of a built-in domain ('code', 'prose' or 'arithmetic'); KeyError naming the domains."""
    if domain == "code":
        return list(_stdlib_documents()[0])
    if domain == "prose":
        return list(_stdlib_documents()[1])
    if domain == "arithmetic":
        return list(_arithmetic(4000, 0))
    raise KeyError(f"Unknown domain '{domain}'. Built-in domains: {', '.join(BUILTIN_DOMAINS)}.")


def is_validation(doc: str, fraction: float = 0.1) -> bool:
    """Deterministic by-document split: a document is in validation iff its hash falls in the first `fraction`."""
    h = int.from_bytes(hashlib.blake2b(doc.encode(), digest_size=8).digest(), "big")
    return h / 2**64 < fraction


def split(docs: list[str], fraction: float = 0.1) -> tuple[list[str], list[str]]:
    """(train, validation) documents: each goes to validation by a stable hash of its text, about `fraction` of
    them; at least one is held out when there are two or more."""
    train, val = [], []
    for d in docs:
        (val if is_validation(d, fraction) else train).append(d)
    if not val and len(train) > 1:  # tiny uploads: keep at least one held-out document
        val.append(train.pop())
    return train, val


def parse_upload(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> list[str]:
    """Documents from an uploaded .txt (paragraphs split on blank lines) or .jsonl (a "text" field per line).

    Raises ValueError with a message for the user: too big, empty, binary, no usable text.
    """
    if len(data) > max_bytes:
        raise ValueError(f"{name} is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB. "
                         "A tiny model reads only a few hundred KB in a run: upload a smaller sample.")
    if not data.strip():
        raise ValueError(f"{name} is empty.")
    if b"\x00" in data[:65536]:
        raise ValueError(f"{name} looks binary (it contains NUL bytes). Upload plain text (.txt) or JSON lines.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        if text.count("\ufffd") > 0.01 * len(text):
            raise ValueError(f"{name} is not UTF-8 text (too many undecodable bytes). Save it as UTF-8.") from None
    if name.lower().endswith((".jsonl", ".json")):
        docs, bad = [], 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                bad += 1
                continue
            value = row.get("text") if isinstance(row, dict) else None
            if isinstance(value, str) and value.strip():
                docs.append(value.strip())
            else:
                bad += 1
        if not docs:
            raise ValueError(f"{name} has no lines with a non-empty \"text\" field ({bad} unusable lines). "
                             'Each line must be a JSON object like {"text": "..."}.')
        return docs
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    docs = _chunk(paragraphs, 1000)
    if not docs:
        raise ValueError(f"{name} has no text.")
    return docs


def _chunk(paragraphs: list[str], size: int) -> list[str]:
    """Group paragraphs into documents of about `size` characters (one-line files become several documents)."""
    docs, cur = [], ""
    for p in paragraphs:
        while len(p) > 2 * size:  # one huge paragraph: cut it
            docs.append(p[:size])
            p = p[size:]
        cur = f"{cur}\n\n{p}" if cur else p
        if len(cur) >= size:
            docs.append(cur)
            cur = ""
    if cur:
        docs.append(cur)
    return docs


def domain_slug(name: str) -> str:
    """A metric-key-safe name: 'My notes.txt' -> 'my_notes'."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    slug = "".join(c if c.isalnum() else "_" for c in stem.lower()).strip("_")
    return (slug or "upload")[:24]


def python_version() -> str:
    """This interpreter's 'major.minor' version (the standard library the code and prose domains come from)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def describe(domain: str, docs: list[str]) -> str:
    """One line for the page: the domain, its document count, size in KB and the start of a sample."""
    sample = docs[0][:200] if docs else ""
    return f"{domain}: {len(docs)} documents, {sum(len(d.encode()) for d in docs) / 1000:.0f} KB. e.g. {sample!r}"


__all__ = ["BUILTIN_DOMAINS", "DOMAIN_HELP", "MAX_UPLOAD_BYTES", "builtin_documents", "arithmetic_documents",
           "split", "is_validation", "parse_upload", "domain_slug", "python_version", "describe"]
