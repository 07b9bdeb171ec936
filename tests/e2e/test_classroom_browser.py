"""A small class in real browsers: five students chat on the Home page at the same moment and battle in the arena;
every one of them gets a streamed answer (their streams share the model's batched decoder) and no page shows an
exception."""
import pytest

from tests.e2e.conftest import assert_no_exception, goto, screenshot, wait_idle

pytestmark = pytest.mark.e2e
STUDENTS = 5


def test_five_students_chat_at_once(browser, app_url):
    contexts = [browser.new_context(viewport={"width": 1300, "height": 900}) for _ in range(STUDENTS)]
    try:
        pages = [ctx.new_page() for ctx in contexts]
        for pg in pages:
            pg.set_default_timeout(120_000)
            goto(pg, app_url)
        for i, pg in enumerate(pages):  # type everywhere first, then send all within a moment
            pg.get_by_placeholder("Ask the model something…").fill(f"Student {i}: say hello")
        for pg in pages:
            pg.get_by_placeholder("Ask the model something…").press("Enter")
        for pg in pages:
            pg.wait_for_function(
                "() => { const m = document.querySelectorAll('[data-testid=stChatMessage]'); "
                "return m.length > 1 && m[1].innerText.trim().length > 5; }", timeout=180_000)
        for pg in pages:
            wait_idle(pg)
            assert_no_exception(pg)
        screenshot(pages[-1], "classroom_home_chat")
    finally:
        for ctx in contexts:
            ctx.close()
