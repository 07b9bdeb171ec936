"""Helpers for the evaluation page that are not drawing but not a lesson either."""
from __future__ import annotations

from pathlib import Path


def training_corpus(sources: dict[str, Path], picked: list[str]) -> dict[str, str]:
    """The chosen training-data files as text (name -> text); bytes that are not UTF-8 are replaced, not fatal."""
    return {name: Path(sources[name]).read_text(encoding="utf-8", errors="replace") for name in picked}
