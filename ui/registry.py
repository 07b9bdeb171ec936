"""The lab pages found in pages/: a new page plugs in by dropping a file there."""
from __future__ import annotations

import ast
import re
import threading
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"
_lock = threading.Lock()  # ast.parse is not safe when several sessions' script threads call it at once
_cache: dict[tuple[str, float], tuple[str, str]] = {}


def _describe(path: Path) -> tuple[str, str]:
    """(icon, summary) of a page file, parsed once per file version."""
    key = (str(path), path.stat().st_mtime)
    with _lock:
        if key not in _cache:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            summary = (ast.get_docstring(tree) or "").strip().splitlines()
            icon = ""
            for node in tree.body:
                if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ICON" for t in node.targets):
                    icon = ast.literal_eval(node.value)
            _cache[key] = (icon, summary[0] if summary else "")
        return _cache[key]


def lab_pages() -> list[tuple[Path, str, str, str]]:
    """(path, title, icon, one-line summary) for every page file pages/NN_Title_words.py, skipping _private.py.

    The number orders the pages, the file name gives the title, the first line of the module docstring is the
    summary on the home page map, and a module-level ICON = "..." string its icon.
    """
    found = []
    for path in sorted(PAGES_DIR.glob("[!_]*.py")):
        title = re.sub(r"^\d+_", "", path.stem).replace("_", " ")
        icon, summary = _describe(path)
        found.append((path, title, icon, summary))
    return found
