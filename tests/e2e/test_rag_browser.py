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
