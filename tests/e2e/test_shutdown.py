"""Shutdown of the real process loses nothing: every request on an accepted connection is
answered, and a lame-duck period keeps serving while readiness already fails."""

import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.artifacts import make_artifacts
from tests.support.servers import Server, start_server, stop_server

ATTEMPTS = 20

BODY = json.dumps({"texts": ["a gripping , beautifully acted film"] * 8}).encode()
REQUEST = (
    b"POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionAbortedError(f"closed without a response (got {data!r})")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionAbortedError("closed in the middle of a response")
        body += chunk
    return int(lines[0].split()[1]), headers, body


def sigterm_with_requests_in_flight(server: Server, connections: int) -> list[str]:
    port = int(server.base_url.rsplit(":", 1)[1])
    sockets = [
        socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(connections)
    ]
    for sock in sockets:
        sock.sendall(REQUEST)
    server.process.send_signal(signal.SIGTERM)
    outcomes = []
    for sock in sockets:
        try:
            status, _, body = read_response(sock)
            assert status in (200, 503), (status, body)
            if status == 503:  # SHUTDOWN_TIMEOUT_S ran out: our JSON error, not a reset
                assert json.loads(body)["error"]["type"] == "not_ready"
            # Then the server closes the connection cleanly (EOF), not with a reset.
            outcomes.append(str(status) if sock.recv(1) == b"" else "data after the response")
        except OSError as exc:  # ConnectionResetError, ConnectionAbortedError, timeouts
            outcomes.append(type(exc).__name__)
        finally:
            sock.close()
    return outcomes


def failed_attempts(attempts: int, env: dict[str, str], **start: Any) -> dict[int, list[str]]:
    """SIGTERM with 40 requests in flight, `attempts` times (not one lucky run): the outcomes
    of each attempt in which a client got anything but 200 or 503."""
    failures: dict[int, list[str]] = {}
    for attempt in range(attempts):
        server = start_server(env, **start)
        try:
            outcomes = sigterm_with_requests_in_flight(server, connections=40)
            server.process.wait(30)
        finally:
            log = stop_server(server)
        assert server.process.returncode in (0, -signal.SIGTERM), log
        if any(outcome not in ("200", "503") for outcome in outcomes):
            failures[attempt] = outcomes
    return failures


def test_sigterm_with_40_connections_in_flight_resets_none(tmp_path: Path) -> None:
    model_dir = make_artifacts(tmp_path / "model")
    failures = failed_attempts(ATTEMPTS, {"MODEL_DIR": str(model_dir), "MAX_QUEUE_MS": "0"})
    assert not failures, failures


# How users start a FastAPI app besides `python -m app`; {port} is filled in.
LAUNCHERS = {
    "uvicorn --factory": ("-m", "uvicorn", "app.main:create_app", "--factory", "--port", "{port}"),
    "gunicorn with uvicorn workers": (
        "-m",
        "gunicorn",
        "app.main:create_app()",
        "--worker-class",
        "uvicorn_worker.UvicornWorker",
        "--bind",
        "127.0.0.1:{port}",
    ),
    "python -m app": ("-m", "app"),
}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_sigterm_resets_none_however_the_app_is_started(launcher: str, tmp_path: Path) -> None:
    """On one CPU with forward passes on the event loop, the hard case: while the loop computes,
    connections wait unaccepted or unparsed, which uvicorn alone resets (75 of 120 here)."""
    model_dir = make_artifacts(tmp_path / "model")
    env = {"MODEL_DIR": str(model_dir), "MAX_QUEUE_MS": "0", "INFERENCE_THREAD": "off"}
    one_cpu = {min(os.sched_getaffinity(0))}
    failures = failed_attempts(ATTEMPTS // 2, env, command=LAUNCHERS[launcher], cpus=one_cpu)
    assert not failures, failures


def test_lame_duck_period_serves_with_connection_close_while_not_ready(tmp_path: Path) -> None:
    model_dir = make_artifacts(tmp_path / "model")
    server = start_server({"MODEL_DIR": str(model_dir), "SHUTDOWN_DELAY_S": "6"})
    try:
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        while httpx.get(server.base_url + "/health/ready").status_code == 200:
            assert time.monotonic() < deadline, "readiness did not fail on SIGTERM"
        ready = httpx.get(server.base_url + "/health/ready")
        assert ready.status_code == 503 and ready.headers["connection"] == "close"
        # Still accepting and serving (new connections too), telling clients to go elsewhere.
        served = httpx.post(server.base_url + "/classify", json={"texts": ["fine"]})
        assert served.status_code == 200 and served.headers["connection"] == "close"
        assert server.process.poll() is None
        server.process.wait(30)  # then it exits by itself
    finally:
        log = stop_server(server)
    assert server.process.returncode in (0, -signal.SIGTERM), log
