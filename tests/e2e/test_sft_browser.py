"""Real browser: open the fine-tuning page, see the token mask, start an SFT run, watch live curves, Stop it."""
import re

from tests.e2e.conftest import assert_no_exception, goto, screenshot, wait_idle


def test_sft_page_trains_live_and_stops(page, app_url):
    goto(page, app_url, "Fine_tuning")
    page.get_by_text("trained (green)").first.wait_for()
    assert_no_exception(page)
    epochs = page.get_by_role("slider", name="Epochs")  # the longest run: still going when Stop is pressed
    epochs.scroll_into_view_if_needed()
    epochs.focus()
    epochs.press("End")
    wait_idle(page)
    button = page.get_by_role("button", name="Train", exact=True)
    button.scroll_into_view_if_needed()
    button.click()
    page.get_by_text(re.compile(r"step [1-9]\d*/\d+ · elapsed")).first.wait_for(timeout=180_000)  # live progress
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)  # the live loss chart
    assert_no_exception(page)
    screenshot(page, "sft_training")
    page.locator('[class*="st-key-sft_stop_"] button').first.click()
    page.get_by_text("Stopped by the user").first.wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page)
    screenshot(page, "sft_stopped")
