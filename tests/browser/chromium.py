"""Headless Chromium driven by Playwright, for the browser tests. Where Debian's `chromium` or the
`browser` extra is missing (`tests/browser/install.sh` installs both), a test module that
imports this is skipped, and pytest's summary says why. Screenshots go to `artifacts/browser/`
(git-ignored)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"{CHROMIUM} is missing: run tests/browser/install.sh (apt-get install chromium)",
                allow_module_level=True)
playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="playwright is missing: pip install -e '.[browser]'"
)
expect = playwright_sync.expect


@contextlib.contextmanager
def chromium_page(width: int, height: int, failure_shot: str) -> Iterator[Any]:
    """A page of a fresh browser; when the test fails while on it, a screenshot of the page is
    left in ARTIFACTS under the name `failure_shot`."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            try:
                yield page
            except Exception:
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(ARTIFACTS / failure_shot))
                raise
        finally:
            browser.close()
