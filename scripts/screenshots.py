"""Screenshot every page of a running app with the real models: `python scripts/screenshots.py [--out DIR]`.

Starts `streamlit run app.py` on a free port (LLMLAB_HOME from the environment, real models), opens each page in
headless Debian Chromium and saves a PNG per page. Used to look at the app and for the README's pictures.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, goto, start_app  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "test-artifacts" / "pages"))
    parser.add_argument("--tiny", action="store_true", help="use tiny random models")
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {"LLMLAB_TINY_MODELS": "1" if args.tiny else "0"}
    env["LLMLAB_MODEL_CACHE"] = os.environ.get("LLMLAB_MODEL_CACHE", str(Path.home() / ".cache" / "llmlab" / "models"))
    if os.environ.get("LLMLAB_HOME"):
        env["LLMLAB_HOME"] = os.environ["LLMLAB_HOME"]
    proc, url, _ = start_app(env)
    from playwright.sync_api import sync_playwright

    from ui.registry import lab_pages

    paths = [("", "home")] + [(p.stem.split("_", 1)[1], p.stem.split("_", 1)[1].lower()) for p, *_ in lab_pages()]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": 1100})
            page.set_default_timeout(120_000)
            for url_path, name in paths:
                goto(page, url, url_path)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(out / f"{name}.png"))
                print(out / f"{name}.png")
            browser.close()
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
