import pytest

from tests.e2e.conftest import assert_no_exception, goto, screenshot, wait_idle

pytestmark = pytest.mark.e2e


def test_lora_calculator_and_merge_check(page, app_url):
    goto(page, app_url, "LoRA_rank_explorer")
    page.get_by_text("Trainable (LoRA)").first.wait_for(timeout=30_000)  # the calculator, drawn after the page loads
    # The calculator answers at once: switch to GPT-3's dimensions and read the reduction.
    page.locator(".st-key-lora_calc_model").click()
    page.get_by_role("option", name="GPT-3-like (enter dimensions)").click()
    wait_idle(page)
    page.get_by_text("18.9M").first.wait_for()
    assert_no_exception(page)
    # The merge check on a random adapter: merged and unmerged logits agree to rounding.
    page.get_by_role("tab", name="Merge check").click()
    page.get_by_role("button", name="Merge and compare").click()
    page.get_by_text("max |Δlogits| unmerged − merged").wait_for(timeout=120_000)
    wait_idle(page)
    value = page.locator('[data-testid="stMetric"]', has_text="unmerged − merged")
    assert "e-" in value.locator('[data-testid="stMetricValue"]').inner_text()
    assert_no_exception(page)
    screenshot(page, "lora")
