"""A real browser for the console's tests: Debian's Chromium, headless, driven by Playwright (no browser
download), as the ``chromium`` fixture (the top conftest registers it); page sizes and what a page fetches."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, List

import pytest

from tests.helpers.paths import SCREENSHOTS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
TABLET = {"width": 1180, "height": 820}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright  # only the actions venv has it; the Rasa venv loads this plugin

    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run `apt-get install -y chromium`", pytrace=False)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def external_requests(page: Any, base: str) -> List[str]:
    """Every request the page makes that does not go to the back office itself (filled in as it runs)."""
    outside: List[str] = []
    page.on("request", lambda request: None if request.url.startswith(base) else outside.append(request.url))
    return outside
