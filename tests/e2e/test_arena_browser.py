"""Two browsers = two voters in the same arena: each runs a blind battle, votes, sees the names revealed, and the
shared leaderboard counts both votes from two voters."""
import pytest

from tests.e2e.conftest import assert_no_exception, goto, screenshot, wait_idle

pytestmark = pytest.mark.e2e


def open_arena(page, app_url):
    goto(page, app_url)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Arena").first.click()  # works whatever the url_path
    page.get_by_text("Battle settings").first.wait_for()
    wait_idle(page)


def join(page, name: str) -> None:
    """Give a name once per browser session (the vote counts under it)."""
    page.get_by_role("textbox", name="Name or student id").fill(name)
    page.get_by_role("button", name="Join").click()
    page.get_by_text(f"Voting as {name}").first.wait_for()
    wait_idle(page)


def battle_and_vote(page, prompt: str, vote: str) -> None:
    page.get_by_text("Battle settings").first.click()
    # keep the draw to the fast tiny SmolLM2 variants (the tiny Gemma has a 262k vocabulary: slow on a busy CPU)
    page.get_by_role("button", name="Remove Gemma-3-270M base · Q/A").click()
    wait_idle(page)
    page.get_by_role("slider").first.press("Home")  # the shortest answers (16 tokens)
    wait_idle(page)
    page.get_by_placeholder("Ask anything").fill(prompt)
    page.get_by_placeholder("Ask anything").press("Control+Enter")
    wait_idle(page)
    page.get_by_role("button", name="Battle!").click()
    button = page.get_by_role("button", name=vote)
    page.wait_for_function("(name) => [...document.querySelectorAll('button')].some("
                           "b => b.innerText.includes(name) && !b.disabled)", arg=vote.split(" ", 1)[1],
                           timeout=240_000)
    wait_idle(page)
    button.click()
    page.get_by_text("your vote is stored").wait_for(timeout=120_000)
    wait_idle(page)


def test_two_voters_share_one_leaderboard(browser, app_url):
    voters = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    try:
        pages = [ctx.new_page() for ctx in voters]
        for pg, name in zip(pages, ("Ada", "Grace")):
            pg.set_default_timeout(60_000)
            open_arena(pg, app_url)
            join(pg, name)
        battle_and_vote(pages[0], "Say <b>hello</b>", "👈 A is better")
        battle_and_vote(pages[1], "Name a colour.", "👉 B is better")
        for pg in pages:
            assert pg.get_by_text("Model A was").first.is_visible()  # names revealed after the vote
            assert_no_exception(pg)
        board = pages[0]
        board.get_by_role("tab", name="Leaderboard").click()
        board.get_by_text("Live: refresh every 5 s").click()  # this page last ran before the other voter voted
        board.get_by_text("2 blind votes from 2 voters").first.wait_for(timeout=120_000)
        wait_idle(board)
        assert_no_exception(board)
        screenshot(board, "arena_leaderboard")
        pages[1].get_by_role("tab", name="Battle").click()
        screenshot(pages[1], "arena")
    finally:
        for ctx in voters:
            ctx.close()
