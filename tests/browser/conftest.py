"""The browser the tests in this folder drive."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.browser import CHROMIUM_ARGS
from tests.support.system import require_system


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium driven by Playwright (Playwright's own browser download is not used).

    Module-scoped: while Playwright's sync API is open, the main thread counts as running an
    event loop, so other modules' asyncio.run() must not see it.
    """
    executable = require_system("chromium", "apt-get install -y chromium")
    with sync_playwright() as playwright:
        # Playwright gives each launch a fresh temporary profile.
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
