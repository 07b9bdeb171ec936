"""Real browser: open the evaluation page, score a few benchmark items, see the per-subject chart."""
import pytest

from tests.e2e.conftest import assert_no_exception, goto, screenshot, wait_idle

pytestmark = pytest.mark.e2e


def test_eval_page_scores_a_benchmark(page, app_url):
    goto(page, app_url, "Evaluation")
    page.wait_for_selector("text=Score the benchmark")
    limit = page.get_by_role("spinbutton").first  # "Max items (0 = all)"
    limit.fill("6")
    limit.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Score the benchmark").click()
    page.wait_for_selector("text=acc per subject", timeout=180_000)
    wait_idle(page)
    assert page.get_by_text("Random guessing").count() >= 1
    assert_no_exception(page)
    screenshot(page, "evaluation")
