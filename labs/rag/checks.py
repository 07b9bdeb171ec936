"""Notes on what was loaded, before it is indexed: text in a script the embedders were not trained on, a page that is
almost all code, and the same document uploaded twice. Each gives the user a sentence; none stops the index.

    docs, notes = checks.dedupe(docs)          # the second copy of a document is dropped, with a note
    note = checks.script_note(text)            # "" or: mostly Cyrillic / CJK / ... (the embedders read English)
    note = checks.code_note(markdown_text)     # "" or: 85 % of it is code blocks
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter

from labs.rag.load import Document


FOREIGN_SCRIPT_SHARE = 0.3  # of the letters; a few names or symbols in another script are no reason to warn
CODE_SHARE = 0.8  # of the characters inside fenced code blocks
_FENCED = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^ {0,3}\1[ \t]*$|\Z)", re.DOTALL | re.MULTILINE)


def _script(ch: str) -> str:
    """The script of a letter, from its Unicode name: LATIN, CYRILLIC, CJK, ARABIC, ..."""
    try:
        return unicodedata.name(ch).split(" ", 1)[0]
    except ValueError:
        return "UNKNOWN"


def script_note(text: str, embedder: str = "the embedding models here") -> str:
    """A note when most letters are not Latin: the sentence-transformers models here were trained on English text,
    so retrieval by meaning in that script is weak (BM25 still matches its words)."""
    letters = [c for c in text[:200_000] if c.isalpha()]
    if not letters:
        return ""
    scripts = Counter(_script(c) for c in letters)
    foreign = {s: n for s, n in scripts.items() if s != "LATIN"}
    if sum(foreign.values()) / len(letters) < FOREIGN_SCRIPT_SHARE:
        return ""
    main = max(foreign, key=foreign.get).title()
    return (f"Mostly {main} script ({100 * sum(foreign.values()) / len(letters):.0f} % of the letters): {embedder} "
            "learned English, so dense search by meaning is weak here; hybrid search still matches its words.")


def code_note(text: str) -> str:
    """A note when fenced code blocks make up most of a Markdown text (dense search embeds code poorly; the
    keyword side of hybrid search finds identifiers)."""
    if not text:
        return ""
    code = sum(len(m.group(0)) for m in _FENCED.finditer(text))
    share = code / len(text)
    if share < CODE_SHARE:
        return ""
    return (f"{100 * share:.0f} % of this page is code blocks: embeddings capture code poorly, so use hybrid "
            "search (BM25 matches the identifiers).")


def dedupe(docs: list[Document]) -> tuple[list[Document], list[str]]:
    """The documents with exact duplicates (same text, whatever the name) dropped, and a note for each dropped one."""
    seen: dict[str, str] = {}
    kept, notes = [], []
    for doc in docs:
        digest = hashlib.sha256(" ".join(doc.text.split()).encode()).hexdigest()
        if digest in seen:
            notes.append(f"{doc.source} has the same text as {seen[digest]}: indexed once.")
            continue
        seen[digest] = doc.source
        kept.append(doc)
    return kept, notes


def with_notes(doc: Document) -> Document:
    """The document with the script and code notes added to its own note."""
    extra = [n for n in (script_note(doc.text), code_note(doc.text) if doc.kind == "markdown" else "") if n]
    if not extra:
        return doc
    return Document(doc.source, doc.text, doc.kind, " ".join([doc.note, *extra]).strip())
