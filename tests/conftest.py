import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, Response, sync_playwright

from app.artifacts import save_artifacts
from app.main import create_app
from app.model import ModelConfig, RNNClassifier
from app.settings import Settings
from app.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_MODEL = ROOT / "model_artifacts"

TEXTS = [
    "a gripping , beautifully acted film",
    "dull , lifeless and far too long",
    "funny",
    "the plot goes nowhere but the cast is wonderful and the music is lovely",
]


def make_artifacts(
    directory: Path,
    rnn_type: str = "gru",
    labels: tuple[str, ...] = ("neg", "pos"),
    max_length: int = 12,
) -> Path:
    """A small untrained model with real files: fast to build, exercises every loading path."""
    torch.manual_seed(0)
    tokenizer = Tokenizer.build(TEXTS)
    model = RNNClassifier(
        ModelConfig(
            vocab_size=len(tokenizer),
            num_classes=len(labels),
            embedding_dim=8,
            hidden_dim=6,
            rnn_type=rnn_type,
        )
    )  # type: ignore[arg-type]
    save_artifacts(
        directory,
        model.eval(),
        tokenizer,
        list(labels),
        max_length,
        name="tiny",
        version="test",
        extra={"metrics": {}},
    )
    return directory


@pytest.fixture
def tiny_model_dir(tmp_path: Path) -> Path:
    return make_artifacts(tmp_path / "model")


def client_for(model_dir: Path, **settings: Any) -> TestClient:
    """The app in-process; TestClient runs the lifespan, so the model really loads."""
    return TestClient(create_app(Settings(model_dir=model_dir, threads=1, **settings)))


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, client.get("/health/ready").json()
        time.sleep(0.05)


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in 30 s"
        time.sleep(0.001)


def require_system(executable: str, install_hint: str) -> str:
    """Path of a system program a test needs (Chromium, Prometheus, ...).

    Without it the test skips with the reason, except in CI (CI=true), where .ci/run installs
    every such program: there a missing one fails the test instead of silently skipping it.
    """
    found = shutil.which(executable)
    if found:
        return found
    message = f"{executable} is not installed ({install_hint})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; .ci/run must install it")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess whose output is read as it comes: a full pipe would block its logging,
    and with it the event loop, after a few hundred access-log lines."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process, self.base_url = process, base_url
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    def output(self) -> str:
        """Everything it printed; call once it has exited."""
        self._reader.join(10)
        return "".join(self._lines)


def start_server(env: dict[str, str], wait_for: str = "/health/ready") -> Server:
    """The real service: `python -m app` in a subprocess, talked to over HTTP, once `wait_for`
    answers 200 (/health/live for a server that is meant to stay not ready)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        text=True,
        env={**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "THREADS": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    server = Server(process, base_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.output()}")
        try:
            if httpx.get(base_url + wait_for, timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not answer 200 on {wait_for} in 60 s")


def stop_server(server: Server) -> str:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            server.process.kill()
    return server.output()


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


@pytest.fixture(scope="session")
def bundled_server() -> Iterator[Server]:
    server = start_server({"MODEL_DIR": str(BUNDLED_MODEL)})
    yield server
    stop_server(server)
