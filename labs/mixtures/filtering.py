"""Quality filtering of training documents: exact and near-duplicates, Gopher-style heuristics, a per-domain report
and the filter measured against the web domain's noise labels."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from labs.data import corpora

# ---------------------------------------------------------------------------------------------------------------
# Quality filtering: exact dedup + simple heuristics (in the spirit of the Gopher rules, Rae et al. 2021, App. A)
# + near-duplicate removal on a normalised text (CCNet, Wenzek et al. 2020)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterStats:
    """What quality_filter kept and removed: documents and bytes in / out, and the count dropped for each reason."""

    docs_in: int
    docs_out: int
    bytes_in: int
    bytes_out: int
    duplicates: int
    too_short: int
    repetitive: int
    symbols: int
    near_duplicates: int = 0

    @property
    def removed_fraction(self) -> float:
        """Share of the bytes removed (0-1; 0 for empty input)."""
        return 1 - self.bytes_out / self.bytes_in if self.bytes_in else 0.0


FILTER_REASONS = ("duplicate", "too short", "near-duplicate", "repetitive", "symbol-heavy")


def near_duplicate_key(doc: str) -> str:
    """The text a near-duplicate shares with its original: case folded, words holding a digit dropped (dates,
    counters, tracking ids), punctuation made space, whitespace collapsed. CCNet (Wenzek et al. 2020) hashes
    paragraphs normalised like this; copies edited beyond it need MinHash over word shingles (Lee et al. 2022,
    "Deduplicating Training Data Makes Language Models Better")."""
    words = (w for w in doc.casefold().split() if not any(c.isdigit() for c in w))
    return " ".join("".join(c if c.isalnum() else " " for c in " ".join(words)).split())


def filter_reasons(docs: list[str], min_chars: int = 80) -> list[str]:
    """Why each document would be dropped (one of FILTER_REASONS), '' for a document kept. The first copy of a
    duplicate is kept; later copies are dropped."""
    exact, near, out = set(), set(), []
    for d in docs:
        key = hashlib.blake2b(" ".join(d.split()).encode(), digest_size=16).digest()
        normalised = near_duplicate_key(d)
        norm = hashlib.blake2b(normalised.encode(), digest_size=16).digest()
        lines = [ln.strip() for ln in d.splitlines() if ln.strip()]
        if key in exact:
            out.append("duplicate")
        elif len(d) < min_chars:
            out.append("too short")
        elif norm in near:
            out.append("near-duplicate")
        elif len(lines) >= 4 and len(set(lines)) / len(lines) < 0.7:  # Gopher: duplicate-line fraction
            out.append("repetitive")
        elif sum(c.isalnum() or c.isspace() for c in d) / len(d) < 0.6:  # mostly punctuation / markup
            out.append("symbol-heavy")
        else:
            out.append("")
        exact.add(key)
        if len(d) >= min_chars and normalised:  # all-symbol junk has an empty key: not a "copy"
            near.add(norm)
    return out


def quality_filter(docs: list[str], min_chars: int = 80) -> tuple[list[str], FilterStats]:
    """Drop exact duplicates (after whitespace normalisation), short documents, near-duplicates (near_duplicate_key),
    documents whose lines are mostly repeats, and documents that are mostly symbols. Order is kept."""
    reasons = filter_reasons(docs, min_chars)
    kept = [d for d, r in zip(docs, reasons) if not r]
    size = lambda xs: sum(len(x.encode()) for x in xs)  # noqa: E731
    n = {r: reasons.count(r) for r in FILTER_REASONS}
    return kept, FilterStats(len(docs), len(kept), size(docs), size(kept), n["duplicate"], n["too short"],
                             n["repetitive"], n["symbol-heavy"], n["near-duplicate"])


def filter_report(domain_docs: dict[str, list[str]]) -> list[dict]:
    """What the quality filter would remove from each domain's training documents (a table for the page)."""
    rows = []
    for name, docs in domain_docs.items():
        train, _ = corpora.split(docs)
        _, s = quality_filter(train)
        rows.append({"domain": name, "documents": s.docs_in, "kept": s.docs_out, "duplicates": s.duplicates,
                     "near-duplicates": s.near_duplicates, "too short": s.too_short, "repetitive": s.repetitive,
                     "symbol-heavy": s.symbols,
                     "bytes removed": f"{100 * s.removed_fraction:.1f}%"})
    return rows


def filter_vs_labels(pages: list[tuple[str, str]]) -> tuple[list[dict], dict]:
    """How the filter treats each kind of document in a labelled domain (corpora.web_pages: (kind, text) pairs,
    kind 'clean' or a kind of noise), on its training split, as in a run. Returns one row per kind (documents,
    kept, removed by each reason, bytes removed) and {precision, recall, noise_bytes_share}: precision = removed
    documents that are noise / all removed; recall = noise documents removed / all noise documents."""
    pairs = [(kind, text) for kind, text in pages if not corpora.is_validation(text)]  # the training split
    train, labels = [text for _, text in pairs], [kind for kind, _ in pairs]  # by position: an exact copy is
    reasons = filter_reasons(train)  # the same text as its original but labelled as the copy
    rows = []
    for kind in dict.fromkeys(labels):
        mine = [(d, r) for d, r, k in zip(train, reasons, labels) if k == kind]
        size = sum(len(d.encode()) for d, _ in mine)
        removed = sum(len(d.encode()) for d, r in mine if r)
        rows.append({"kind": kind, "documents": len(mine), "kept": sum(not r for _, r in mine),
                     **{reason: sum(r == reason for _, r in mine) for reason in FILTER_REASONS},
                     "bytes removed": f"{100 * removed / max(size, 1):.0f}%"})
    noise = [k != "clean" for k in labels]
    dropped = [bool(r) for r in reasons]
    hits = sum(n and r for n, r in zip(noise, dropped))
    total = sum(len(d.encode()) for d in train)
    return rows, {"precision": hits / max(sum(dropped), 1), "recall": hits / max(sum(noise), 1),
                  "noise_bytes_share": sum(len(d.encode()) for d, n in zip(train, noise) if n) / max(total, 1)}
