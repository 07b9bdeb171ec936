"""Preference-tuning page in a real browser: a short DPO run draws the reward curves live, then before/after."""
import re

import pytest

from tests.e2e.conftest import assert_no_exception, open_dpo_page, screenshot, wait_idle

pytestmark = pytest.mark.e2e


def test_dpo_run_draws_live_reward_curves(page, app_url):
    open_dpo_page(page, app_url, steps=2)
    for name in ("Held-out pairs to score", "Held-out prompts to answer", "Answer length (tokens)"):
        thumb = page.get_by_role("slider", name=name)  # keep the tiny run short: each to its minimum
        thumb.focus()
        thumb.press("Home")
        wait_idle(page)
    page.get_by_role("button", name="Train").click()
    # Curves appear from step 1 while the run goes on (a shared 2-core machine can take a while to get there).
    page.locator(".js-plotly-plot").first.wait_for(timeout=300_000)
    # The note names the latest step (1 or 2, depending on how fast the run is).
    page.get_by_text(re.compile(r"Step \d+: chosen reward")).first.wait_for(timeout=120_000)
    assert page.get_by_text("Reading the curves").first.is_visible()
    assert_no_exception(page)
    screenshot(page, "preference_tuning")
    stop = page.get_by_role("button", name="Stop", exact=True)
    if stop.count():
        stop.first.click()
    wait_idle(page)
    assert_no_exception(page)
