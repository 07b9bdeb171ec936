"""LLM Lab: entry point. st.navigation over pages/, the shared sidebar, and the home page."""
from __future__ import annotations

import labs.core.settings  # noqa: F401  (sets HF_HUB_OFFLINE etc. before anything loads transformers)
import streamlit as st
from ui.registry import lab_pages


def home() -> None:
    from ui import home_page

    home_page.render(lab_pages())


st.set_page_config(page_title="LLM Lab", page_icon="🧪", layout="wide")
pages = [st.Page(home, title="Home", icon="🏠", default=True, url_path="home")]
for path, title, icon, _ in lab_pages():
    pages.append(st.Page(str(path), title=title, icon=icon or None))
st.navigation(pages).run()
