"""LLM Lab: entry point. st.navigation over pages/, the shared sidebar, and the home page."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import labs.settings  # noqa: F401  (sets HF_HUB_OFFLINE etc. before anything loads transformers)
import streamlit as st

ROOT = Path(__file__).parent
PAGES_DIR = ROOT / "pages"


def lab_pages() -> list[tuple[Path, str, str, str]]:
    """(path, title, icon, one-line summary) for every page file: pages/NN_Title_words.py, skipping _private.py.

    A new page plugs in by dropping a file here; its module docstring's first line is its summary and a
    module-level ICON = "..." string its icon.
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


def home() -> None:
    from ui import home_page

    home_page.render(lab_pages())


st.set_page_config(page_title="LLM Lab", page_icon="🧪", layout="wide")
pages = [st.Page(home, title="Home", icon="🏠", default=True, url_path="home")]
for path, title, icon, _ in lab_pages():
    pages.append(st.Page(str(path), title=title, icon=icon or None))
st.navigation(pages).run()
