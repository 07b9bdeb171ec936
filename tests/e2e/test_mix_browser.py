"""Data-mixtures page in a real browser: the calculator switches preset, an upload becomes a fourth domain."""
import pytest

from labs.data import asset
from tests.e2e.conftest import assert_no_exception, goto, screenshot, wait_idle

pytestmark = pytest.mark.e2e


def test_mix_calculator_and_upload(page, app_url):
    goto(page, app_url)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Data mixtures").first.click()
    # The computed-vs-published explanation for GPT-3's inconsistent rows is visible.
    page.get_by_text("Computed epochs differ from the published ones").first.wait_for()
    assert_no_exception(page)

    page.get_by_role("tab", name="Train a tiny GPT").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        str(asset("mixtures", "ships_log.jsonl")))
    wait_idle(page)
    page.get_by_text("ships_log 20%").first.wait_for()  # 40/40/20/25 normalised: the upload is a domain
    assert_no_exception(page)
    screenshot(page, "mix_upload")


def test_mix_quality_vs_quantity_section(page, app_url):
    goto(page, app_url)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Data mixtures").first.click()
    wait_idle(page)
    page.get_by_role("tab", name="Quality vs quantity").click()
    button = page.get_by_role("button", name="Compare with and without the filter (equal steps)")
    button.wait_for()
    page.get_by_text("Filter recall").first.wait_for()  # the web domain's labels vs what the filter removes
    page.get_by_text("press 'Compare with and without").first.wait_for()  # M4's box says "not measured yet" first
    steps = page.get_by_role("spinbutton", name="Steps (each run)")
    steps.fill("20")
    steps.press("Enter")
    wait_idle(page)
    button.click()
    page.get_by_text("Clean-text loss, filtered").first.wait_for(timeout=180_000)  # a 20-step run finished
    page.get_by_text("(M4)").first.wait_for()
    assert_no_exception(page)
    screenshot(page, "mix_quality")
