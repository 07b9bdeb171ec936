import pytest

from tests.e2e.conftest import assert_no_exception, goto, screenshot, wait_idle

pytestmark = pytest.mark.e2e


def test_home_chat_streams_an_answer(page, app_url):
    goto(page, app_url)
    assert page.get_by_text("LLM Lab").first.is_visible()
    assert page.get_by_text("This machine").first.is_visible()
    box = page.get_by_placeholder("Ask the model something…")
    box.fill("Say hello")
    box.press("Enter")
    assistant = page.locator('[data-testid="stChatMessage"]').nth(1)
    assistant.wait_for()
    page.wait_for_function(
        "() => { const m = document.querySelectorAll('[data-testid=stChatMessage]'); "
        "return m.length > 1 && m[1].innerText.trim().length > 5; }", timeout=60_000)
    wait_idle(page)
    assert len(assistant.inner_text().strip()) > 5
    assert_no_exception(page)
    screenshot(page, "home")

