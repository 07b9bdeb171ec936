"""A real browser against the app started with a models file that lists a tiny Hugging Face folder model: the Home
chat lists it, answers with it, and the fine-tuning page offers it."""

import pytest

from tests import byo
from tests.e2e.conftest import assert_no_exception, goto, screenshot, start_app, stop_app, wait_idle

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def byo_app_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("byo-e2e")
    folder = byo.build_tiny_folder(root / "tiny")
    models_file = byo.write_models_file(root / "models.toml", [byo.folder_entry(folder)])
    proc, url, _home = start_app({"LLMLAB_MODELS_FILE": str(models_file)})
    yield url
    stop_app(proc)


def test_folder_model_is_picked_and_answers_in_the_browser(page, byo_app_url):
    goto(page, byo_app_url)
    page.locator(".st-key-home_model input").wait_for()  # rendered, not a skeleton
    page.locator(".st-key-home_model").click()
    page.get_by_role("option", name=byo.FOLDER_NAME).click()
    wait_idle(page)
    picked = page.locator(".st-key-home_model")
    assert byo.FOLDER_NAME in (picked.text_content() or "") + " ".join(
        picked.locator("input").evaluate_all("els => els.map(e => e.value)")), picked.inner_html()[:1500]
    box = page.get_by_placeholder("Ask the model something…")
    box.fill("Say hello")
    box.press("Enter")
    page.wait_for_function(
        "() => { const m = document.querySelectorAll('[data-testid=stChatMessage]'); "
        "return m.length > 1 && m[1].innerText.trim().length > 0; }", timeout=60_000)
    wait_idle(page)
    assert_no_exception(page)
    screenshot(page, "home-own-model")

    goto(page, byo_app_url, "Fine_tuning")
    page.locator(".st-key-sft_model input").wait_for()  # the page has drawn its widgets, not skeletons
    wait_idle(page)
    page.locator(".st-key-sft_model").click()
    page.get_by_role("option", name=byo.FOLDER_NAME).click()
    wait_idle(page)
    page.get_by_text("trained (green)").first.wait_for()
    assert_no_exception(page)
    screenshot(page, "sft-own-model")
