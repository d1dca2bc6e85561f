"""Graceful shutdown in-process: the exit signal turns the service not-ready before the server
drains. The real-process drain and timeout are in tests/e2e/."""

import logging
import signal
from types import FrameType

import pytest
import uvicorn

from app.__main__ import main
from app.http.shutdown import graceful_exit
from app.lifecycle.state import ServingState
from app.settings import Settings


def test_exit_signal_turns_not_ready_before_the_server_handler_runs() -> None:
    service = ServingState(Settings())
    seen: list[bool] = []

    def server_handler(sig: int, frame: FrameType | None) -> None:  # uvicorn's handle_exit
        seen.append(service.readiness.state == "draining")

    original = signal.signal(signal.SIGTERM, server_handler)
    try:
        with graceful_exit(service.begin_shutdown):
            signal.raise_signal(signal.SIGTERM)
        assert seen == [True]
        # Afterwards the server's own handler is back in place.
        assert signal.getsignal(signal.SIGTERM) is server_handler
    finally:
        signal.signal(signal.SIGTERM, original)


def test_a_server_other_than_uvicorn_is_told_at_start_what_to_use(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = ServingState(Settings())
    original = signal.signal(signal.SIGTERM, lambda sig, frame: None)  # not uvicorn's handler
    try:
        with caplog.at_level(logging.WARNING), graceful_exit(service.begin_shutdown):
            pass
    finally:
        signal.signal(signal.SIGTERM, original)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "`python -m app`" in warning.getMessage() and "\n" not in warning.getMessage()


def test_server_gets_the_shutdown_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[uvicorn.Config] = []
    monkeypatch.setattr("app.__main__.serve", seen.append)
    monkeypatch.setattr("app.__main__.get_settings", lambda: Settings(shutdown_timeout_s=7))
    main()
    assert seen[0].timeout_graceful_shutdown == 7
