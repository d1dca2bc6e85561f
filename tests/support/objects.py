"""A real S3-compatible server for the tests: moto's standalone server (`moto_server`) in a
subprocess on a free port, in memory, speaking S3's REST protocol over HTTP with signature
checks. Stopped by its PID; started again on the same port for a store that comes back (empty:
what it held is put back by the test)."""

import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.repository.store import ObjectStore, StoreAddress
from tests.support.servers import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}
BUCKET = "models"
MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))


class S3Server:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: list[str] = []

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {''.join(self._log)}")
            try:
                httpx.get(self.url + "/moto-api/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("moto_server did not answer in 30 s")

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self._log.append(line.decode(errors="replace"))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def create_bucket(self, bucket: str = BUCKET) -> None:
        request = urllib.request.Request(f"{self.url}/{bucket}", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()

    def requests(self, fragment: str) -> int:
        """Requests in the server's log whose request line holds `fragment`."""
        return sum(1 for line in list(self._log) if fragment in line)

    def store(self, url: str) -> ObjectStore:
        """A client of the bucket, as the service and training make one (signing with the
        credentials in the environment: CREDENTIALS in the tests)."""
        return ObjectStore(StoreAddress.parse(url), self.url, "rnn-text-classifier[s3]")

    def env(self, url: str) -> dict[str, str]:
        """A server's settings for a repository at `url` on this store."""
        return {"MODEL_REPOSITORY": url, "S3_ENDPOINT_URL": self.url, **CREDENTIALS}


@contextmanager
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    try:
        server.create_bucket()
        yield server
    finally:
        server.stop()


def upload_version(store: ObjectStore, folder: Path, name: str, version: int) -> None:
    """A version as a publisher writes one: every file, config.json last."""
    files = sorted(p for p in folder.iterdir() if p.name != "config.json")
    for file in [*files, folder / "config.json"]:
        store.upload(f"{name}/{version}/{file.name}", file)


class Gateway:
    """A TCP relay in front of the store: the service's only way to it. Closed, the store is
    unreachable (connections refused, those open cut) while it keeps what it holds; opened again
    on the same port, it is back as it was, as a store after a network outage is."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.port = target_port, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=True)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for connection in self._open:
                connection.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with self._lock:
                    self._open.discard(end)
                end.close()
