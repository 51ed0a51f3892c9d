"""Debian's Chromium driven by Playwright against a running Dagster webserver: the browser
tests' one way to open a page, and to wait for what it shows (expect(), never a sleep)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from playwright.sync_api import Locator, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"  # Debian's package; never a Playwright-downloaded browser
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1440, "height": 1100}
# The "Join the Dagster community" pop-up would cover the page; this is how it remembers
# having been dismissed.
DISMISS_COMMUNITY_POPUP = "window.localStorage.setItem('communityNux', 'true')"


def visible(locator: Locator) -> None:
    expect(locator).to_be_visible(timeout=TIMEOUT_MS)


@contextlib.contextmanager
def chromium_page(
    width: int = VIEWPORT["width"], height: int = VIEWPORT["height"]
) -> Iterator[Page]:
    """A page of a fresh headless Chromium (`width` x `height`: the UI scrolls inside its
    panes, so a full-page screenshot is the viewport; the community pop-up dismissed, every
    wait up to TIMEOUT_MS); the browser is closed afterwards."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
        )
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            context.add_init_script(DISMISS_COMMUNITY_POPUP)
            context.set_default_timeout(TIMEOUT_MS)
            yield context.new_page()
        finally:
            browser.close()
