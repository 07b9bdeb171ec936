"""Real-browser fixtures: one `streamlit run app.py` per test session on a free localhost port (tiny models,
a throw-away LLMLAB_HOME), and Playwright pages in Debian's /usr/bin/chromium (headless)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env_overrides: dict | None = None, timeout: float = 90) -> tuple[subprocess.Popen, str, Path]:
    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="llmlab-e2e-"))
    env = dict(os.environ, LLMLAB_HOME=str(home), LLMLAB_TINY_MODELS="1", PYTHONUNBUFFERED="1")
    env.update(env_overrides or {})
    log = open(home / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run_app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early: {(home / 'streamlit.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url, home
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not become healthy in time")


@pytest.fixture(scope="module")
def app_url():
    """A fresh app per test module: one page's background runs never queue ahead of another page's test."""
    proc, url, _home = start_app()
    yield url
    stop_app(proc)


def stop_app(proc: subprocess.Popen) -> None:
    """End an app started by start_app (terminate, then kill if it does not stop within 10 s)."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run scripts/test-system-deps.sh (make test does).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


def goto(page, app_url: str, url_path: str = "") -> None:
    """Open a page by its url_path ('' = home) and wait until Streamlit has finished running the script."""
    page.goto(f"{app_url}/{url_path}")
    page.wait_for_selector('[data-testid="stApp"]')
    wait_idle(page)
    wait_drawn(page)


def wait_drawn(page, timeout_ms: int = 60_000) -> None:
    """Wait until the page shows its elements, not Streamlit's grey loading skeletons (the script may not have
    started when the running indicator was first checked)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("() => !document.querySelector('[data-testid=stSkeleton], [data-testid=stAppSkeleton]')",
                               timeout=timeout_ms)
    except PlaywrightTimeout:
        return  # the test's own waits report what is missing
    wait_idle(page)


def wait_idle(page, timeout: float = 60) -> None:
    """Wait for Streamlit's 'running' indicator to go away (the script finished)."""
    page.wait_for_timeout(500)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            page.wait_for_timeout(300)
            if page.locator('[data-testid="stStatusWidget"]').count() == 0:
                return
        page.wait_for_timeout(250)


def assert_no_exception(page) -> None:
    exc = page.locator('[data-testid="stException"]')
    assert exc.count() == 0, f"the page shows an exception: {exc.first.inner_text()[:500]}"


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_dpo_page(page, app_url: str, steps: int) -> None:
    """The Preference tuning page with the bundled pairs shown and Steps set (a short run for tiny models)."""
    goto(page, app_url)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Preference tuning").first.click()
    page.get_by_text("plain beats jargon").first.wait_for(timeout=120_000)
    wait_idle(page)
    box = page.get_by_role("spinbutton", name="Steps")
    box.fill(str(steps))
    box.press("Enter")
    wait_idle(page)
