"""RAG page in a real browser: the split tab reacts to a new chunk size, the chunk viewer shows escaped text."""
import re

import pytest

from tests.e2e.conftest import assert_no_exception, goto, screenshot, wait_idle

pytestmark = pytest.mark.e2e


def test_rag_split_tab_rechunks(page, app_url):
    goto(page, app_url)
    page.locator('[data-testid="stSidebarNav"] a', has_text="RAG playground").first.click()
    page.get_by_text("Python standard library docs").first.wait_for()
    assert_no_exception(page)
    page.get_by_role("tab", name="2 · Split").click()
    chunks = page.locator('[data-testid="stMetric"]', has_text="Chunks").first
    chunks.wait_for()
    before = int(re.search(r"\d+", chunks.inner_text().split("Chunks", 1)[1]).group())
    size = page.get_by_role("spinbutton", name="Chunk size")
    size.fill("250")
    size.press("Enter")
    wait_idle(page)
    page.wait_for_function("(b) => { const m = [...document.querySelectorAll('[data-testid=stMetric]')]"
                           ".find(e => e.innerText.startsWith('Chunks')); "
                           "return m && parseInt(m.innerText.replace('Chunks', '')) > b; }", arg=before)
    after = int(re.search(r"\d+", chunks.inner_text().split("Chunks", 1)[1]).group())
    assert after > before  # smaller chunks -> more of them
    assert page.locator("span[title^='overlap of chunks']").count() > 0  # the viewer marks overlaps
    assert_no_exception(page)
    screenshot(page, "rag_split")


def test_installed_docs_by_headings_and_hybrid_ranks(page, app_url):
    """Documentation nobody here wrote: Streamlit's guides split at headings (the heading path per chunk), embedded,
    and searched by hybrid RRF with each hit's dense and BM25 rank in the table."""
    goto(page, app_url)
    page.locator('[data-testid="stSidebarNav"] a', has_text="RAG playground").first.click()
    page.get_by_text("Python standard library docs").first.wait_for()
    wait_idle(page)
    page.get_by_text("Installed library docs").first.click()
    page.get_by_text(re.compile(r"29 document\(s\)")).first.wait_for()  # the guides the streamlit package ships
    wait_idle(page)
    page.get_by_role("tab", name="2 · Split").click()
    page.locator('[data-testid="stRadio"]', has_text="Splitter").get_by_text("markdown", exact=True).click()
    wait_idle(page)
    page.get_by_text("Each chunk's heading path").first.wait_for(timeout=60_000)
    page.get_by_text("Each chunk's heading path").first.scroll_into_view_if_needed()
    assert_no_exception(page)
    screenshot(page, "rag_markdown_split")
    page.get_by_role("tab", name="3 · Embed & store").click()
    page.get_by_role("button", name="Embed and store").first.click()
    page.get_by_text("Chunks stored").first.wait_for(timeout=240_000)
    wait_idle(page)
    page.get_by_role("tab", name="4 · Retrieve & generate").click()
    page.locator('[data-testid="stRadio"]', has_text="Search").get_by_text("hybrid BM25 + dense").click()
    wait_idle(page)
    page.get_by_role("textbox", name="Question").fill("How do I keep a counter between reruns of my app?")
    page.get_by_role("button", name="Retrieve and answer").first.click()
    page.get_by_text("Retrieved chunks").first.wait_for(timeout=180_000)
    wait_idle(page)
    page.get_by_text("Retrieved chunks").first.scroll_into_view_if_needed()
    assert_no_exception(page)
    screenshot(page, "rag_hybrid_ranks")
