import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

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
    return TestClient(create_app(Settings(model_dir=model_dir, torch_threads=1, **settings)))


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, client.get("/health/ready").json()
        time.sleep(0.05)


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
    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process, self.base_url = process, base_url


def start_server(env: dict[str, str]) -> Server:
    """The real service: `python -m app` in a subprocess, talked to over HTTP."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        text=True,
        env={**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "TORCH_THREADS": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited early:\n{process.stdout.read() if process.stdout else ''}"
            )
        try:
            if httpx.get(base_url + "/health/ready", timeout=1).status_code == 200:
                return Server(process, base_url)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not become ready in 60 s")


def stop_server(server: Server) -> str:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            server.process.kill()
    return server.process.stdout.read() if server.process.stdout else ""


@pytest.fixture(scope="session")
def bundled_server() -> Iterator[Server]:
    server = start_server({"MODEL_DIR": str(BUNDLED_MODEL)})
    yield server
    stop_server(server)
