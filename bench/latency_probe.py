"""Sequential per-request latency over one keep-alive connection, timed by the client itself.

wrk's percentiles include its coordinated-omission correction, which turns one stall of a
sequential (1-connection) run into many samples; this probe times every request on its own.
Servers are probed in alternating rounds, so slow drift of a shared machine hits them alike.

    python bench/latency_probe.py --bodies BODIES --requests 3000 --rounds 5 ours=8101 naive=8103

Prints one JSON object: {name: {"n", "non2xx", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
"reconnects"}}.
"""

import argparse
import json
import socket
import statistics
import time
from pathlib import Path


class Connection:
    """A minimal HTTP/1.1 keep-alive client for POST /classify (just enough for uvicorn)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reconnects = 0
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def timed(self, raw: bytes) -> tuple[int, float]:
        """(status, milliseconds) of one request; a connection the server closed while idle
        (uvicorn's keep-alive timeout) is reopened and the request retried, untimed reconnect."""
        for attempt in (1, 2):
            started = time.perf_counter_ns()
            try:
                status = self.request(raw)
            except (ConnectionError, OSError):
                if attempt == 2:
                    raise
                self.sock.close()
                self.reconnects += 1
                self._connect()
                continue
            return status, (time.perf_counter_ns() - started) / 1e6
        raise AssertionError("unreachable")

    def request(self, raw: bytes) -> int:
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            raise RuntimeError("response without Content-Length")
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            rest += chunk
        self.buffer = rest[length:]
        return status

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk


def build_requests(bodies: list[bytes], host: str, port: int) -> list[bytes]:
    return [
        b"POST /classify HTTP/1.1\r\n"
        + f"Host: {host}:{port}\r\n".encode()
        + b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
        for body in bodies
    ]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=Path, required=True, help="one JSON body per line")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--requests", type=int, default=3000, help="timed requests per server")
    parser.add_argument("--rounds", type=int, default=5, help="alternations between servers")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests per server")
    parser.add_argument("targets", nargs="+", help="NAME=PORT")
    args = parser.parse_args()

    bodies = [line for line in args.bodies.read_bytes().splitlines() if line.strip()]
    targets = [(name, int(port)) for name, port in (t.split("=", 1) for t in args.targets)]
    connections = {name: Connection(args.host, port) for name, port in targets}
    raws = {name: build_requests(bodies, args.host, port) for name, port in targets}
    samples: dict[str, list[float]] = {name: [] for name, _ in targets}
    non2xx = dict.fromkeys(samples, 0)
    try:
        for name, _ in targets:
            for i in range(args.warmup):
                connections[name].timed(raws[name][i % len(bodies)])
        per_round = max(1, args.requests // args.rounds)
        cursor = 0
        for _ in range(args.rounds):
            for name, _ in targets:
                conn, raw = connections[name], raws[name]
                for i in range(cursor, cursor + per_round):
                    status, elapsed_ms = conn.timed(raw[i % len(raw)])
                    samples[name].append(elapsed_ms)
                    if not 200 <= status < 300:
                        non2xx[name] += 1
            cursor += per_round
    finally:
        for conn in connections.values():
            conn.close()

    report = {}
    for name, values in samples.items():
        values.sort()
        report[name] = {
            "n": len(values),
            "non2xx": non2xx[name],
            "p50_ms": percentile(values, 50),
            "p90_ms": percentile(values, 90),
            "p99_ms": percentile(values, 99),
            "mean_ms": statistics.fmean(values),
            "reconnects": connections[name].reconnects,
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
