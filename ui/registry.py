"""The lab pages found in pages/: a new page plugs in by dropping a file there."""
from __future__ import annotations

import ast
import re
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"


def lab_pages() -> list[tuple[Path, str, str, str]]:
    """(path, title, icon, one-line summary) for every page file pages/NN_Title_words.py, skipping _private.py.

    The number orders the pages, the file name gives the title, the first line of the module docstring is the
    summary on the home page map, and a module-level ICON = "..." string its icon.
    """
    found = []
    for path in sorted(PAGES_DIR.glob("[!_]*.py")):
        title = re.sub(r"^\d+_", "", path.stem).replace("_", " ")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        summary = (ast.get_docstring(tree) or "").strip().splitlines()
        icon = ""
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ICON" for t in node.targets):
                icon = ast.literal_eval(node.value)
        found.append((path, title, icon, summary[0] if summary else ""))
    return found
