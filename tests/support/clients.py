"""The app in-process (FastAPI's TestClient runs its lifespan, so the model really loads)."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.lifecycle.state import ServingState
from app.main import create_app
from app.settings import Settings


def client_for(model_dir: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(model_dir=model_dir, threads=1, **settings)))


def serving_state(client: TestClient) -> ServingState:
    state: ServingState = client.app.state.serving  # type: ignore[attr-defined]
    return state


def wait_for(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"condition not reached in {timeout_s} s"
        time.sleep(0.001)


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, client.get("/health/ready").json()
        time.sleep(0.05)
