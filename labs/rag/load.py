"""Load: files (PDF, HTML, Markdown, text, CSV, JSON/JSONL), URLs, and the default corpus.

The default corpus is real and always present offline: the docstrings of a subset of the Python standard
library that is installed alongside this app (one document per module). It is small on purpose (about
130 k characters, ~300 chunks of 500 characters) so that embedding it takes seconds on a 2-core laptop.
"""
from __future__ import annotations

import csv
import hashlib
import importlib
import inspect
import io
import json
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePath

from labs.rag.markdown import clean_markdown

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # a bigger file is refused (and would take minutes to embed anyway)
MAX_RECORDS = 20_000  # rows of a CSV / records of a JSON file kept

# Modules whose docstrings make the default corpus; the bundled question set (assets/rag) is written for them.
DEFAULT_MODULES = (
    "json", "csv", "pathlib", "itertools", "functools", "collections", "datetime", "random", "re", "textwrap",
    "heapq", "bisect", "string", "fractions", "uuid", "base64", "math", "secrets", "glob",
    "fnmatch", "copy", "enum", "dataclasses", "contextlib", "hashlib", "queue",
)

KINDS = {".pdf": "pdf", ".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown",
         ".txt": "text", ".text": "text", ".rst": "text", ".csv": "csv", ".json": "json", ".jsonl": "jsonl",
         ".ndjson": "jsonl"}


class LoadError(ValueError):
    """A file or URL we cannot read; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Document:
    source: str  # file name, "file.pdf#p3", module name, or URL
    text: str
    kind: str  # pdf, html, markdown, text, csv, json, jsonl, docstrings, url
    note: str = ""  # something the user should know (e.g. "not UTF-8: decoded as cp1252")


def corpus_id(docs: list[Document]) -> str:
    """A short content hash: the same documents give the same id (and reuse the same Chroma collection)."""
    h = hashlib.sha256()
    for d in docs:
        h.update(d.source.encode() + b"\0" + d.text.encode("utf-8", "replace") + b"\1")
    return h.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------- the default corpus

def _module_text(module) -> str:
    """Module docstring, then `name: docstring` for each public function/class (and public methods of classes)."""
    parts = [f"Module {module.__name__}\n\n{inspect.getdoc(module) or ''}".strip()]
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    for name in sorted(set(names)):
        obj = getattr(module, name, None)
        if obj is None or inspect.ismodule(obj) or not (callable(obj) or inspect.isclass(obj)):
            continue
        # C modules (math, itertools, heapq) report no or another __module__; keep only what this module defines
        owner = getattr(obj, "__module__", None)
        if owner not in (None, module.__name__, "_" + module.__name__) and not owner.lstrip("_").startswith(module.__name__):
            continue
        doc = inspect.getdoc(obj)
        if not doc:
            continue
        parts.append(f"{module.__name__}.{name}: {doc}")
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                if attr.startswith("_") or not (callable(member) or isinstance(member, (property, classmethod, staticmethod))):
                    continue
                mdoc = inspect.getdoc(member)
                if mdoc:
                    parts.append(f"{module.__name__}.{name}.{attr}: {mdoc}")
    return "\n\n".join(parts)


@lru_cache(maxsize=4)
def _stdlib_corpus(modules: tuple[str, ...]) -> tuple[Document, ...]:
    docs = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a trimmed Python build; the corpus is simply smaller
            continue
        docs.append(Document(source=name, text=_module_text(module), kind="docstrings"))
    return tuple(docs)


def default_corpus(modules: tuple[str, ...] = DEFAULT_MODULES) -> list[Document]:
    """The installed standard library's docstrings (this Python's version), one document per module."""
    return list(_stdlib_corpus(tuple(modules)))


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


# ------------------------------------------------------------------------------------------------------ files

def decode_text(data: bytes, name: str) -> tuple[str, str]:
    """UTF-8 (with or without BOM), else cp1252, else Latin-1 -- and say so. Returns (text, note)."""
    for encoding, note in (("utf-8-sig", ""), ("cp1252", f"{name} is not UTF-8; it was read as Windows-1252."),
                           ("latin-1", f"{name} is not UTF-8; it was read as Latin-1 (some characters may be wrong).")):
        try:
            return data.decode(encoding), note
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def load_pdf(name: str, data: bytes) -> list[Document]:
    """One document per page with text (`name#p3`); encrypted or corrupt PDFs are refused with a reason."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")  # many "encrypted" PDFs only restrict printing and open with an empty password
            except Exception:  # noqa: BLE001 - pypdf raises several types for unsupported crypto
                ok = 0
            if not ok:
                raise LoadError(f"{name} is encrypted (password-protected); save an unprotected copy and upload that.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise LoadError(f"{name} is not a readable PDF ({type(exc).__name__}: {exc}).") from exc
    docs = [Document(f"{name}#p{i + 1}", _clean(t), "pdf") for i, t in enumerate(pages) if t.strip()]
    if not docs:
        raise LoadError(f"{name} has no extractable text (a scanned PDF needs OCR first).")
    return docs


def html_to_text(markup: str) -> str:
    """Visible text only: scripts, styles and templates are dropped, never executed or rendered."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "head"]):
        tag.decompose()
    return _clean(soup.get_text("\n"))


def _record_text(record) -> str:
    if isinstance(record, dict):
        return "; ".join(f"{k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v}"
                         for k, v in record.items())
    return json.dumps(record, ensure_ascii=False) if isinstance(record, (list,)) else str(record)


def load_csv(name: str, text: str) -> str:
    """Each row becomes one paragraph `column: value; column: value` so a chunk keeps the column names."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = []
    try:
        for i, row in enumerate(csv.DictReader(io.StringIO(text), dialect=dialect)):
            if i >= MAX_RECORDS:
                break
            rows.append(_record_text({k: v for k, v in row.items() if k is not None}))
    except csv.Error as exc:
        raise LoadError(f"{name} is not valid CSV ({exc}).") from exc
    return "\n\n".join(rows)


def load_json(name: str, text: str, lines: bool) -> str:
    """A list of records (or JSONL) becomes one paragraph per record; any other JSON is pretty-printed."""
    try:
        if lines:
            records = [json.loads(line) for line in text.splitlines() if line.strip()][:MAX_RECORDS]
        else:
            value = json.loads(text)
            if isinstance(value, list):
                records = value[:MAX_RECORDS]
            else:
                return json.dumps(value, indent=1, ensure_ascii=False)
    except json.JSONDecodeError as exc:
        raise LoadError(f"{name} is not valid {'JSON Lines' if lines else 'JSON'}: {exc.msg} "
                        f"at line {exc.lineno}, column {exc.colno}.") from exc
    return "\n\n".join(_record_text(r) for r in records)


def load_file(name: str, data: bytes) -> list[Document]:
    """Read one uploaded file by its extension. Raises LoadError with a reason for anything unusable."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise LoadError(f"{name} is {len(data) / 2**20:.0f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB. "
                        "Split it or upload the part you need.")
    if not data.strip():
        raise LoadError(f"{name} is empty.")
    suffix = PurePath(name).suffix.lower()
    kind = KINDS.get(suffix)
    if kind is None:
        raise LoadError(f"{name}: unsupported type '{suffix or 'no extension'}'. Use one of: {', '.join(sorted(KINDS))}.")
    if kind == "pdf":
        return load_pdf(name, data)
    text, note = decode_text(data, name)
    if kind == "html":
        text = html_to_text(text)
    elif kind == "csv":
        text = load_csv(name, text)
    elif kind in ("json", "jsonl"):
        text = load_json(name, text, lines=kind == "jsonl")
    elif kind == "markdown":  # front matter and <!-- comments --> are never shown to a reader: never embed them
        text = _clean(clean_markdown(text))
    else:
        text = _clean(text)
    if not text.strip():
        raise LoadError(f"{name} contains no text after parsing.")
    return [Document(name, text, kind, note)]


def fetch_url(url: str, timeout: float = 8.0) -> list[Document]:
    """Fetch a web page or PDF. Offline (or blocked) machines get a clear LoadError, never a hang."""
    if not re.match(r"^https?://", url.strip(), re.I):
        raise LoadError("A URL must start with http:// or https://.")
    request = urllib.request.Request(url.strip(), headers={"User-Agent": "llmlab-rag/1.0"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only, checked above
            data = response.read(MAX_UPLOAD_BYTES + 1)
            ctype = response.headers.get_content_type()
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LoadError(f"Could not fetch {url} ({reason}). This machine may have no internet access: "
                        "download the page and upload the file instead.") from exc
    name = url.rstrip("/").rsplit("/", 1)[-1] or "page"
    if ctype == "application/pdf":
        return [Document(f"{url}#{d.source.rsplit('#', 1)[-1]}", d.text, "url") for d in load_pdf(name, data)]
    text, note = decode_text(data, url)
    text = html_to_text(text) if "html" in ctype or text.lstrip()[:1] == "<" else _clean(text)
    if not text:
        raise LoadError(f"{url} has no readable text.")
    return [Document(url, text, "url", note)]
