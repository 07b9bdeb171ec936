"""LLM Lab: entry point. st.navigation over pages/, the shared sidebar, and the home page."""
from __future__ import annotations

import labs.core.settings  # noqa: F401  (sets HF_HUB_OFFLINE etc. before anything loads transformers)
import streamlit as st
from labs.core.errors import ConfigError
from labs.runs import jobs
from ui.registry import lab_pages


def home() -> None:
    from ui import home_page

    home_page.render(lab_pages())


st.set_page_config(page_title="LLM Lab", page_icon="🧪", layout="wide")
try:  # the run queue first: with LLMLAB_DB_URL it is a database, and a replica without it must not half start
    jobs.manager()
except ConfigError as exc:  # the database is down or LLMLAB_RUN_QUEUE is wrong: say which setting, start nothing
    st.error(f"LLM Lab cannot start: {exc}")
    st.stop()
pages = [st.Page(home, title="Home", icon="🏠", default=True, url_path="home")]
for path, title, icon, _ in lab_pages():
    pages.append(st.Page(str(path), title=title, icon=icon or None))
st.navigation(pages).run()
