"""The environment and the servers under test, for bench/run.py.

Environment: wrk (installed when missing), the CPU layout, free ports, the code version, the load
average. Servers: the servers' commands (LitServe when installed), each started on one core in its own session
(setsid), readiness, a checked first answer, stopping a process group, and its RSS.
"""

import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


@dataclass
class Server:
    key: str
    title: str
    command: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    shown_env: tuple[str, ...] = ()  # variables the report shows in front of the command
    proc: subprocess.Popen[bytes] | None = None
    rss_warm_kib: int = 0
    rss_after_kib: int = 0
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


children: list[subprocess.Popen[bytes]] = []  # wrk, probe, py-spy: ended in run.py's `finally`


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------- environment


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    prefix: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            sys.exit(
                "wrk is missing and we are not root (no sudo): install it with apt-get install wrk"
            )
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", "wrk"]
    log("wrk not found: " + shlex.join(install))
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run([*prefix, "apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is still missing after apt-get install wrk")
    return found


def cpu_layout() -> tuple[int, int]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        log(f"WARNING: only CPU {cpus[0]} available: servers and load generator share it")
        return cpus[0], cpus[0]
    return cpus[0], cpus[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def code_version() -> str:
    """The commit, and whether app/ differs from it: the service is measured as the tree holds it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "app"], cwd=ROOT, capture_output=True, text=True
        ).stdout.splitlines()
    except OSError:
        return "unknown (no git)"
    if not commit:
        return "unknown (not a git checkout)"
    return f"commit {commit}" + (
        f" + uncommitted changes in {len(changed)} file(s) under app/" if changed else ""
    )


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def shown_path(path: Path) -> str:
    """A path as the report and the log show it: relative to the repository when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_results(path: Path, lines: list[str]) -> None:
    """A results page of markdown lines, and where it went, in the log."""
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log(f"wrote {shown_path(path)}")


# ---------------------------------------------------------------- servers


def litserve_installed() -> bool:
    """LitServe is a bench-only extra (pip install -e '.[bench]'), never a service dependency."""
    return importlib.util.find_spec("litserve") is not None


def distinct_free_ports(count: int) -> list[int]:
    while len(ports := {free_port() for _ in range(count)}) < count:
        pass
    return sorted(ports)


def make_servers(
    model_dir: Path, logs: Path, access_log: bool, with_litserve: bool
) -> list[Server]:
    level = "info" if access_log else "warning"
    base = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    py = sys.executable

    def uvicorn(module: str, port: int) -> list[str]:
        command = [py, "-m", "uvicorn", "--app-dir", str(BENCH), f"{module}:app"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", level]
        return command + ([] if access_log else ["--no-access-log"])

    floor_port, noop_port, naive_port, ours_port, litserve_port = distinct_free_ports(5)
    ours_env = {
        **base,
        "MODEL_DIR": str(model_dir),
        "HOST": "127.0.0.1",
        "PORT": str(ours_port),
        "WORKERS": "1",
        "THREADS": "1",
        "LOG_LEVEL": level,
    }
    torch_env = {**base, "MODEL_DIR": str(model_dir), "TORCH_THREADS": "1"}
    servers = [
        Server("floor", "bare ASGI on uvicorn (HTTP floor)", uvicorn("floor_server", floor_port),
               base, floor_port, logs / "floor.log"),
        Server("noop", "FastAPI no-op", uvicorn("noop_server", noop_port), base,
               noop_port, logs / "noop.log"),
        Server("naive", "FastAPI naive (model per request)", uvicorn("naive_server", naive_port),
               torch_env, naive_port, logs / "naive.log", ("MODEL_DIR", "TORCH_THREADS")),
    ]  # fmt: skip
    if with_litserve:
        title = f"LitServe {importlib.metadata.version('litserve')} (batching, torch eager)"
        command = [py, str(BENCH / "litserve_server.py"), "--port", str(litserve_port),
                   "--log-level", level]  # fmt: skip
        servers.append(Server("litserve", title, command, torch_env, litserve_port,
                              logs / "litserve.log", ("MODEL_DIR", "TORCH_THREADS")))  # fmt: skip
    servers.append(Server("ours", "ours (python -m app)", [py, "-m", "app"], ours_env, ours_port,
                          logs / "ours.log", ("MODEL_DIR", "WORKERS", "THREADS", "LOG_LEVEL")))  # fmt: skip
    return servers


def start_server(server: Server, cpu: int | str) -> None:
    """Start it on `cpu` (a CPU number, or a taskset list such as "0,1")."""
    with server.log_path.open("wb") as out:
        server.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), *server.command],
            cwd=ROOT,
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # setsid: own session, own autogroup, own process group
        )


def log_tail(server: Server, lines: int = 30) -> str:
    try:
        return "\n".join(server.log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    assert server.proc is not None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.key} exited with {server.proc.returncode}:\n{log_tail(server)}"
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            conn.request("GET", "/health/ready")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.key} not ready after {timeout:.0f} s:\n{log_tail(server)}")


def check_answer(server: Server, body: bytes, texts: int) -> None:
    """One request by hand: a 200 with one result per text, so nobody benchmarks error pages."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/classify", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"{server.key}: /classify answered {response.status}: {payload[:300]!r}")
    results = json.loads(payload)["results"]
    if len(results) != texts or not {"label", "score", "probabilities"} <= set(results[0]):
        raise RuntimeError(f"{server.key}: unexpected answer {payload[:300]!r}")


def stop_process_group(proc: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
    """SIGTERM the process group we started (it is its own session), then SIGKILL if needed."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            if not group_pids(proc.pid):
                break
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.wait(5)


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # fields: state, ppid, pgrp, ...; a zombie has no memory left to count
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def rss_kib(pgid: int) -> int:
    """VmRSS summed over the server's process group (uvicorn workers included)."""
    total = 0
    for pid in group_pids(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total
