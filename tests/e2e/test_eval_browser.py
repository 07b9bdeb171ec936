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


def test_contamination_experiment_in_the_browser(page, app_url):
    """C14: leak the test set in a short fine-tune and see the score and the claim box (tiny model, minimum sizes)."""
    goto(page, app_url, "Evaluation")
    page.get_by_role("tab", name="Contamination").click()
    page.wait_for_selector("text=Run the contamination experiment")
    for name in ("Test items", "Epochs of each fine-tune"):
        page.get_by_role("slider", name=name).press("Home")
        wait_idle(page)
    page.get_by_role("button", name="Run the contamination experiment").click()
    page.wait_for_selector("text=Score jump over the clean run", timeout=180_000)
    wait_idle(page)
    assert page.get_by_text("Does the lecture's claim hold here?").count() >= 1
    assert_no_exception(page)
    screenshot(page, "evaluation_contamination")
