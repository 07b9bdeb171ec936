"""Linear vs full attention page in a real browser: the recurrent = chunked check, then the memory tab's 75%;
the palindrome and parity length sweeps' controls and claim boxes on the Synthetic tasks tab."""
import pytest

from tests.e2e.conftest import assert_no_exception, goto, screenshot, wait_idle

pytestmark = pytest.mark.e2e


def test_attn_check_and_memory_tab(page, app_url):
    goto(page, app_url, "Linear_vs_full_attention")
    page.get_by_text("fixed-size state").first.wait_for()
    assert_no_exception(page)
    page.get_by_role("button", name="Check recurrent = chunked on random input").click()
    wait_idle(page)
    page.get_by_text("max |recurrent − chunked|").first.wait_for()
    assert_no_exception(page)
    page.get_by_role("tab", name="Memory at long context").click()
    page.get_by_text("Long-context limit for 3:1").first.wait_for()
    metric = page.locator('[data-testid="stMetric"]', has_text="Long-context limit for 3:1").first
    assert "75% less" in metric.inner_text()
    assert page.get_by_text("1.84 ms vs 11.48 ms").count() > 0  # the published figure, with its source
    assert_no_exception(page)
    screenshot(page, "attn_memory")


def test_attn_length_sweep_controls_render(page, app_url):
    goto(page, app_url, "Linear_vs_full_attention")
    page.get_by_role("tab", name="Synthetic tasks").click()
    for label, claim in (("Run the palindrome sweep", "C11b"), ("Run the parity sweep", "C11c")):
        button = page.get_by_role("button", name=label)
        button.first.wait_for()
        button.first.scroll_into_view_if_needed()
        assert page.get_by_text(f"({claim})").count() > 0  # its claim box, not measured before a run
    assert page.get_by_text("no parity sweep in this session yet").count() > 0
    assert_no_exception(page)
    screenshot(page, "attn_length_sweeps")
