"""The real service in a subprocess (`python -m app`, or another command), talked to over HTTP and
gRPC (each server gets its own free gRPC port unless the test sets GRPC_PORT)."""

import os
import socket
import subprocess
import sys
import threading
import time

import httpx

from tests.support.artifacts import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess whose output is read as it comes: a full pipe would block its logging,
    and with it the event loop, after a few hundred access-log lines."""

    def __init__(self, process: subprocess.Popen[str], base_url: str, grpc_port: int) -> None:
        self.process, self.base_url = process, base_url
        self.grpc_address = f"127.0.0.1:{grpc_port}"  # host:port, as gRPC clients take it
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    def printed(self) -> str:
        """What it has printed so far."""
        return "".join(self._lines)

    def output(self) -> str:
        """Everything it printed; call once it has exited."""
        self._reader.join(10)
        return self.printed()


def start_server(
    env: dict[str, str],
    wait_for: str = "/health/ready",
    command: tuple[str, ...] = ("-m", "app"),
    cpus: set[int] | None = None,
) -> Server:
    """The real service, `python -m app` (or python with `command`) in a subprocess, once
    `wait_for` answers 200 (/health/live for a server that is meant to stay not ready). PORT and
    HOST are in its environment; a `command` that takes them as options gets {port} filled in.
    `cpus`: the only CPUs it may run on."""
    port = free_port()
    grpc_port = int(env.get("GRPC_PORT", free_port()))
    process = subprocess.Popen(
        [sys.executable, *(part.format(port=port) for part in command)],
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        cwd=ROOT,
        text=True,
        env={
            **os.environ,
            "PORT": str(port),
            "GRPC_PORT": str(grpc_port),
            "HOST": "127.0.0.1",
            "THREADS": "1",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    server = Server(process, base_url, grpc_port)
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
