"""The app on the database queue, in a real browser (tiny models): a DPO run started on the page is queued in the
database, taken by the app's own worker, drawn live, and listed on the Runs page with where it ran."""
import tempfile

import pytest

from tests.e2e.conftest import assert_no_exception, open_dpo_page, screenshot, start_app, stop_app, wait_idle

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def queue_app():
    db = tempfile.mkdtemp(prefix="llmlab-queue-")
    proc, url, _ = start_app({"LLMLAB_RUN_QUEUE": "db", "LLMLAB_DB_URL": f"sqlite:///{db}/queue.sqlite",
                              "LLMLAB_ARTIFACTS": f"{db}/shared"})
    yield url
    stop_app(proc)


def test_a_run_through_the_database_queue_shows_where_it_ran(page, queue_app):
    open_dpo_page(page, queue_app, steps=2)
    page.get_by_role("button", name="Train").click()
    page.get_by_text("Finished: 2 steps").first.wait_for(timeout=300_000)  # metrics came back from the database
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)  # the curves, drawn on the rerun after "Finished"
    assert_no_exception(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Runs").first.click()
    # the grid draws on a canvas; its accessible table (attached, not visible) carries the same cells
    page.locator("th", has_text="ran on").first.wait_for(state="attached", timeout=60_000)
    wait_idle(page)
    page.locator("td", has_text=":app").first.wait_for(state="attached", timeout=30_000)  # host:pid:app took it
    assert_no_exception(page)
    screenshot(page, "runs_shared_queue")
