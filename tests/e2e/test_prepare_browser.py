"""Ready before the bell, in a real browser (tiny models): `python -m ui.prepare` prepares two pages' default
experiments into a fresh LLMLAB_HOME; in the app started on that home, pressing each page's default button shows
the stored result (with when it was prepared, and the claim box) within about a second of the click; Home lists them
as ready."""
import os
import subprocess
import sys
import tempfile
import time

import pytest

from tests.e2e.conftest import ROOT, assert_no_exception, goto, screenshot, start_app, stop_app, wait_idle

pytestmark = pytest.mark.e2e
DEMOS = (  # (demo key, page link, its tab, the button, text the finished result shows)
    ("dpo.train", "Preference tuning", None, "Train", "(C8)"),
    ("mix.train", "Data mixtures", "Train a tiny GPT", "Train on this mixture", "(C3)"),
)


@pytest.fixture(scope="module")
def prepared_app():
    home = tempfile.mkdtemp(prefix="llmlab-prepared-")
    env = dict(os.environ, LLMLAB_HOME=home, LLMLAB_TINY_MODELS="1")
    out = subprocess.run([sys.executable, "-m", "ui.prepare", "--only", ",".join(d[0] for d in DEMOS)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert all(f"{key}" in out.stdout and "ready" in out.stdout for key, *_ in DEMOS), out.stdout
    proc, url, _ = start_app({"LLMLAB_HOME": home})
    yield url
    stop_app(proc)


@pytest.mark.parametrize("key, link, tab, button, shows", DEMOS)
def test_the_default_button_shows_the_prepared_result_at_once(page, prepared_app, key, link, tab, button, shows):
    goto(page, prepared_app)
    page.locator('[data-testid="stSidebarNav"] a', has_text=link).first.click()
    if tab:
        page.get_by_role("tab", name=tab).first.click()
    page.get_by_role("button", name=button, exact=True).first.wait_for(timeout=120_000)
    wait_idle(page)
    t0 = time.perf_counter()
    page.get_by_role("button", name=button, exact=True).first.click()
    page.get_by_text("Prepared at").first.wait_for(timeout=30_000)
    seconds = time.perf_counter() - t0
    page.get_by_text(shows).first.wait_for(timeout=10_000)  # the claim box reads the stored run
    wait_idle(page)
    assert_no_exception(page)
    screenshot(page, f"prepared_{key.replace('.', '_')}")
    print(f"{key}: stored result shown {seconds:.2f} s after the click")
    assert seconds < 1.5, f"{seconds:.2f} s from the click to the stored result"  # 1 s in the issue, plus jitter
    assert page.get_by_role("button", name="Run it live instead").count() == 1


def test_home_lists_the_prepared_demos_as_ready(page, prepared_app):
    goto(page, prepared_app)
    page.get_by_text("Ready for class?").first.click()
    page.get_by_text(f"{len(DEMOS)} of").first.wait_for(timeout=30_000)
    assert_no_exception(page)
    screenshot(page, "home_prepared")
