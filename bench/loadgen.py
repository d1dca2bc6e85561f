"""Load generation for bench/run.py: the scenarios, wrk (with classify.lua) and the latency probe."""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servers import BENCH, Server, children, stop_process_group

LUA_SCRIPT = BENCH / "classify.lua"
PROBE = BENCH / "latency_probe.py"


# ---------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    key: str
    texts: int  # per request
    connections: int

    @property
    def title(self) -> str:
        texts = "1 text" if self.texts == 1 else f"{self.texts} texts"
        conns = "1 connection" if self.connections == 1 else f"{self.connections} connections"
        return f"{texts}/request, {conns}"


SCENARIOS = [
    Scenario("t1_c1", 1, 1),
    Scenario("t1_c16", 1, 16),
    Scenario("t1_c64", 1, 64),
    Scenario("t32_c4", 32, 4),
]


# ---------------------------------------------------------------- load generation


def run_wrk(
    wrk: str, port: int, bodies: Path, connections: int, seconds: int, cpu: int
) -> dict[str, Any]:
    command = [
        "taskset", "-c", str(cpu), wrk, "-t1", f"-c{connections}", f"-d{seconds}s",
        "--timeout", "5s", "-s", str(LUA_SCRIPT), f"http://127.0.0.1:{port}/classify",
        "--", str(bodies),
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    children.append(proc)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    finally:
        stop_process_group(proc, grace=2)
        children.remove(proc)
    text = out.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])  # type: ignore[no-any-return]
    raise RuntimeError(f"wrk gave no result ({proc.returncode}):\n{text}\n{err.decode()}")


def summarize(raw: dict[str, Any], texts: int) -> dict[str, Any]:
    seconds = raw["duration_us"] / 1e6
    ok = raw["requests"] - raw["non2xx"]
    socket_errors = sum(raw["socket_errors"].values())
    return {
        "req_s": ok / seconds,
        "texts_s": ok * texts / seconds,
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "errors": socket_errors + raw["non2xx"],
        "non2xx": raw["non2xx"],
        "socket_errors": socket_errors,
        "requests": raw["requests"],
        "seconds": seconds,
        "wrk": raw,
    }


def run_probe(
    servers: list[Server], bodies: Path, requests: int, rounds: int, cpu: int
) -> dict[str, Any]:
    command = [
        "taskset", "-c", str(cpu), sys.executable, str(PROBE), "--bodies", str(bodies),
        "--requests", str(requests), "--rounds", str(rounds),
        *(f"{s.key}={s.port}" for s in servers),
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    children.append(proc)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        stop_process_group(proc, grace=2)
        children.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"latency probe failed ({proc.returncode}):\n{err.decode()}")
    return json.loads(out)  # type: ignore[no-any-return]
