"""A real headless Chromium (Debian's ``chromium``) driven by Playwright, for the page tests.

Playwright is pointed at /usr/bin/chromium; it never downloads a browser. Without either the
tests fail and say what to install.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # said plainly by the fixture
    sync_playwright = None

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if sync_playwright is None:  # pragma: no cover - a set-up problem, said plainly
        pytest.fail("the browser tests need Playwright: pip install -e '.[test]'")
    if shutil.which(CHROMIUM) is None:  # pragma: no cover
        pytest.fail(f"the browser tests need {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
