"""Documentation nobody here wrote, always installed: the retrieval benchmark's corpora (and a corpus on the page).

* ``streamlit-guides`` -- the Markdown reference guides the streamlit package ships (one page per file, headings,
  code blocks): documentation as people upload it.
* ``torch-nn`` -- the API reference of ``torch.nn``: one page per public layer class, its docstring (reST with
  math and examples), as an API site renders it.

Page names are stable ("chat-ui.md", "torch.nn.Dropout"): the frozen benchmark questions record the page that
answers them (bench/retrieval/questions.json).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
from functools import lru_cache
from pathlib import Path

import torch.nn

from labs.core.errors import MissingData
from labs.rag.load import Document
from labs.rag.markdown import clean_markdown


DOCSETS = {
    "streamlit-guides": "Streamlit's Markdown guides (shipped inside the streamlit package)",
    "torch-nn": "torch.nn's API reference (the docstrings of its layer classes)",
}
MIN_DOC_CHARS = 200  # a class with a one-line docstring is not a page anyone searches


def _streamlit_guides() -> list[Document]:
    found = importlib.util.find_spec("streamlit")  # its folder, without importing the page layer into labs
    if found is None or not found.submodule_search_locations:
        raise MissingData("streamlit is not installed, so its Markdown guides are not here.")
    folder = Path(list(found.submodule_search_locations)[0]) / ".agents" / "skills" / "developing-with-streamlit" \
        / "references"
    files = sorted(folder.glob("*.md"))
    if not files:
        raise MissingData(f"This streamlit ({importlib.metadata.version('streamlit')}) ships no Markdown guides "
                          f"under {folder}.")
    return [Document(f.name, clean_markdown(f.read_text(encoding="utf-8")), "markdown") for f in files]


def _torch_nn() -> list[Document]:
    docs = []
    for name in sorted(torch.nn.modules.__all__):
        obj = getattr(torch.nn, name, None)
        text = inspect.getdoc(obj) if inspect.isclass(obj) else None
        if text and len(text) >= MIN_DOC_CHARS:
            docs.append(Document(f"torch.nn.{name}", f"torch.nn.{name}\n\n{text}", "docstrings"))
    return docs


@lru_cache(maxsize=None)
def _load(name: str) -> tuple[Document, ...]:
    return tuple({"streamlit-guides": _streamlit_guides, "torch-nn": _torch_nn}[name]())


def load_docset(name: str) -> list[Document]:
    """The documents of one documentation set (see DOCSETS), each named by its page."""
    if name not in DOCSETS:
        raise MissingData(f"Unknown documentation set {name!r}; choose one of {', '.join(DOCSETS)}.")
    return list(_load(name))
