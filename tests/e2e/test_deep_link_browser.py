import pytest

from tests.e2e.conftest import assert_no_exception, goto

pytestmark = pytest.mark.e2e


def test_a_deep_link_runs_through_app_navigation(page, app_url):
    """Opening a lab page by its URL first (e.g. the arena's join link) still gets the app's navigation."""
    goto(page, app_url, "Runs")
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.wait_for()
    assert "Home" in nav.inner_text()
    assert_no_exception(page)
