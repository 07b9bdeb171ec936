"""The 1 · Load tab of the RAG page: whether this server may fetch URLs now, the uploader and the documents read from
it, the URL box and Fetch button, and the summary of what was loaded."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from labs.arena import votes
from labs.core import settings
from labs.rag import checks, load


P = "rag"


def url_loading() -> tuple[bool, str]:
    """Whether this server may fetch URLs now: LLMLAB_URL_LOADING and the instructor's class-wide switch."""
    if not settings.url_loading():
        return False, ("URL loading is turned off on this server (LLMLAB_URL_LOADING=off). Download the page in "
                       "your browser and use **Upload files** instead.")
    try:
        on = votes.open_store().url_loading()
    except Exception:  # noqa: BLE001 - the class settings live in the vote store; unreadable = stay safe
        return False, ("URL loading is unavailable: the class settings could not be read (check LLMLAB_DB_URL). "
                       "Use **Upload files** instead.")
    if not on:
        return False, ("The instructor has turned URL loading off for the class. Download the page in your "
                       "browser and use **Upload files** instead.")
    return True, ""


@st.cache_data(show_spinner=False, max_entries=64)
def _read_upload(name: str, data: bytes) -> list[load.Document]:
    return [checks.with_notes(d) for d in load.load_file(name, data)]


def uploaded_docs() -> list[load.Document]:
    """The uploader and the documents read from it; a file that cannot be read is an error line, not a stop."""
    files = st.file_uploader("Documents", accept_multiple_files=True, key=f"{P}_files",
                             type=[k.lstrip(".") for k in load.KINDS],
                             help=f"Up to {load.MAX_UPLOAD_BYTES // 2**20} MB per file. Scripts in HTML are "
                                  "removed, never run; encrypted PDFs are refused.")
    docs: list[load.Document] = []
    for f in files or []:
        try:
            got = _read_upload(f.name, f.getvalue())
        except load.LoadError as exc:
            st.error(str(exc))
            continue
        docs.extend(got)
        for d in got:
            if d.note:
                st.warning(f"{d.source}: {d.note}")
    docs, duplicates = checks.dedupe(docs)
    for note in duplicates:
        st.info(note)
    return docs


def url_docs() -> list[load.Document]:
    """The URL box and Fetch button (when this server and the instructor allow it); the fetched documents."""
    url_ok, url_off_reason = url_loading()
    if not url_ok:
        st.info(url_off_reason)
    c1, c2 = st.columns([4, 1])
    url = c1.text_input("URL", key=f"{P}_url", placeholder="https://docs.python.org/3/library/json.html",
                        disabled=not url_ok,
                        help="A public web page or PDF, fetched once if this machine can reach the internet. "
                             "Addresses inside the server's own network (localhost, 10.x, 192.168.x, ...) are "
                             "refused.")
    if c2.button("Fetch", key=f"{P}_fetch", help="Download the page and keep its visible text", disabled=not url_ok):
        try:
            st.session_state[f"{P}_url_docs"] = load.fetch_url(url, allowed=url_loading()[0])
        except load.LoadError as exc:
            st.error(str(exc))
    return list(st.session_state[f"{P}_url_docs"])


def corpus_summary(docs: list[load.Document]) -> str:
    """Draw what was loaded; returns the corpus id ('' when nothing is loaded)."""
    if not docs:
        st.info("No documents yet: pick modules, upload files, or fetch a URL.")
        return ""
    corpus = load.corpus_id(docs)
    st.success(f"{len(docs)} document(s), {sum(len(d.text) for d in docs):,} characters · corpus id `{corpus}`")
    st.dataframe(pd.DataFrame([{"source": d.source, "kind": d.kind, "characters": len(d.text),
                                "starts with": d.text[:90].replace("\n", " ")} for d in docs]),
                 hide_index=True, width="stretch", height=min(38 * len(docs) + 40, 300))
    return corpus
