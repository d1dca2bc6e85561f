"""Graceful shutdown in-process: the exit signal turns the service not-ready before the server
drains. The real-process drain and timeout are in test_e2e.py."""

import signal
from pathlib import Path
from types import FrameType

import pytest
import uvicorn

from app.__main__ import main
from app.service import Service
from app.settings import Settings
from app.shutdown import before_exit_signals
from tests.conftest import client_for, wait_ready


def test_exit_signal_turns_not_ready_before_the_server_handler_runs() -> None:
    service = Service(Settings())
    seen: list[bool] = []

    def server_handler(sig: int, frame: FrameType | None) -> None:  # uvicorn's handle_exit
        seen.append(service.readiness.state == "draining")

    original = signal.signal(signal.SIGTERM, server_handler)
    try:
        with before_exit_signals(service.begin_shutdown):
            signal.raise_signal(signal.SIGTERM)
        assert seen == [True]
        # Afterwards the server's own handler is back in place.
        assert signal.getsignal(signal.SIGTERM) is server_handler
    finally:
        signal.signal(signal.SIGTERM, original)


def test_shutting_down_fails_readiness_but_serves_what_still_arrives(tiny_model_dir: Path) -> None:
    with client_for(tiny_model_dir) as client:
        wait_ready(client)
        client.app.state.service.begin_shutdown()  # type: ignore[attr-defined]
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["error"] == {"type": "not_ready", "message": "shutting down"}
        assert client.post("/classify", json={"texts": ["funny"]}).status_code == 200


def test_server_gets_the_shutdown_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[uvicorn.Config] = []
    monkeypatch.setattr("app.__main__.serve", seen.append)
    monkeypatch.setattr("app.__main__.get_settings", lambda: Settings(shutdown_timeout_s=7))
    main()
    assert seen[0].timeout_graceful_shutdown == 7
