"""Debian's Chromium driven by Playwright, and what a page did that a user would call broken."""

import os
from urllib.parse import urlsplit

from playwright.sync_api import Page, Response

from tests.support.artifacts import ROOT

# Flags that work for Debian's chromium here: no sandbox (root in a container), nothing that phones
# home, so any request that leaves 127.0.0.1 is the page's own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


class PageWatch:
    """What a page did that a user would call broken: failed or off-host requests, JS errors."""

    def __init__(self, page: Page, allowed_host: str = "127.0.0.1") -> None:
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.allowed_host = allowed_host
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        page.on("response", self._on_response)
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.url}: HTTP {response.status}")

    def off_host(self) -> list[str]:
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("data", "blob")
            and urlsplit(url).hostname != self.allowed_host
        ]

    def assert_clean(self) -> None:
        assert self.off_host() == [], self.off_host()
        assert self.failed == [], self.failed
        assert self.errors == [], self.errors


def save_screenshot(page: Page, name: str, full_page: bool = False) -> None:
    """With UPDATE_SCREENSHOTS=1, refresh docs/<name> (the README shows it); else a no-op."""
    if os.environ.get("UPDATE_SCREENSHOTS"):
        page.screenshot(path=ROOT / "docs" / name, full_page=full_page)
