#!/usr/bin/env python3
"""Side-by-side benchmark: our service vs a no-op FastAPI (the HTTP ceiling) vs a naive FastAPI.

Every server runs on one core (taskset), in its own session (setsid) so that the kernel's
autogroup scheduling keeps it apart from other work; wrk and the latency probe run on another core.
Results go to bench/results.md (and .json next to it); see bench/README.md.

    python bench/run.py              # full run: ~2 s warm-up + 8 s per scenario and server
    python bench/run.py --smoke      # CI: ~1 s per scenario, asserts nothing about speed
    python bench/run.py --profile    # also py-spy our service under 64 connections
"""

import argparse
import csv
import datetime as dt
import http.client
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA_SCRIPT = BENCH / "classify.lua"
PROBE = BENCH / "latency_probe.py"
DATA = ROOT / "data" / "rotten_tomatoes.csv"

# The targets of issue 3, checked (and reported, never enforced) at the end.
TARGET_VS_NOOP_64 = 0.6
TARGET_VS_NAIVE_64 = 2.0
TARGET_P50_EXTRA_MS = 0.2
TARGET_VS_NAIVE_TEXTS_32 = 1.5
TARGET_RSS_GROWTH = 0.10


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


_children: list[subprocess.Popen[bytes]] = []  # wrk, probe, py-spy: ended in `finally`


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


# ---------------------------------------------------------------- request bodies


def write_bodies(directory: Path, seed: int) -> tuple[Path, Path, dict[str, Any]]:
    """Mixed real review texts: one text per body, and 32 texts per body, one JSON per line."""
    with DATA.open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["text"].strip()]
    rng = random.Random(seed)
    rng.shuffle(texts)
    singles = texts[:2000]
    one = directory / "bodies_1.jsonl"
    one.write_text("".join(json.dumps({"texts": [t]}) + "\n" for t in singles))
    many = directory / "bodies_32.jsonl"
    many.write_text(
        "".join(json.dumps({"texts": rng.sample(texts, 32)}) + "\n" for _ in range(256))
    )
    words = sorted(len(t.split()) for t in singles)
    stats = {
        "texts": len(texts),
        "words_min": words[0],
        "words_median": statistics.median(words),
        "words_p90": words[int(0.9 * (len(words) - 1))],
        "words_max": words[-1],
    }
    return one, many, stats


# ---------------------------------------------------------------- servers


def make_servers(model_dir: Path, logs: Path, access_log: bool) -> list[Server]:
    level = "info" if access_log else "warning"
    base = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    py = sys.executable

    def uvicorn(module: str, port: int) -> list[str]:
        command = [py, "-m", "uvicorn", "--app-dir", str(BENCH), f"{module}:app"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", level]
        return command + ([] if access_log else ["--no-access-log"])

    ports = [free_port(), free_port(), free_port()]
    while len(set(ports)) < 3:
        ports = [free_port(), free_port(), free_port()]
    ours_env = {
        **base,
        "MODEL_DIR": str(model_dir),
        "HOST": "127.0.0.1",
        "PORT": str(ports[2]),
        "WORKERS": "1",
        "TORCH_THREADS": "1",
        "LOG_LEVEL": level,
    }
    naive_env = {**base, "MODEL_DIR": str(model_dir), "TORCH_THREADS": "1"}
    return [
        Server("noop", "FastAPI no-op (ceiling)", uvicorn("noop_server", ports[0]), base,
               ports[0], logs / "noop.log"),
        Server("naive", "FastAPI naive (model per request)", uvicorn("naive_server", ports[1]),
               naive_env, ports[1], logs / "naive.log", ("MODEL_DIR", "TORCH_THREADS")),
        Server("ours", "ours (python -m app)", [py, "-m", "app"], ours_env, ports[2],
               logs / "ours.log", ("MODEL_DIR", "WORKERS", "TORCH_THREADS", "LOG_LEVEL")),
    ]  # fmt: skip


def start_server(server: Server, cpu: int) -> None:
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
    _children.append(proc)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    finally:
        stop_process_group(proc, grace=2)
        _children.remove(proc)
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
    _children.append(proc)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        stop_process_group(proc, grace=2)
        _children.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"latency probe failed ({proc.returncode}):\n{err.decode()}")
    return json.loads(out)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- our batcher's own metrics

_BATCHER_SERIES = (
    "rnn_classifier_batch_size_sum",
    "rnn_classifier_batch_size_count",
    "rnn_classifier_inference_duration_seconds_sum",
    "rnn_classifier_queue_duration_seconds_sum",
    "rnn_classifier_queue_duration_seconds_count",
    "rnn_classifier_request_duration_seconds_sum",
    "rnn_classifier_request_duration_seconds_count",
)


def batcher_metrics(server: Server) -> dict[str, float]:
    """Our service's /metrics histograms (sums and counts), to see how it spent the run."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in _BATCHER_SERIES:
            values[name] = values.get(name, 0.0) + float(value)
    return values


def batcher_delta(
    before: dict[str, float], after: dict[str, float], result: dict[str, Any]
) -> dict[str, Any]:
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in _BATCHER_SERIES}
    batches = d["rnn_classifier_batch_size_count"]
    texts = d["rnn_classifier_batch_size_sum"]
    requests = d["rnn_classifier_request_duration_seconds_count"]
    # The scrape brackets wrk's run, so these include a little idle time around it.
    out = {
        "batches": int(batches),
        "mean_batch": texts / batches if batches else 0.0,
        "forward_ms": d["rnn_classifier_inference_duration_seconds_sum"] / batches * 1e3
        if batches
        else 0.0,
        "forward_share": d["rnn_classifier_inference_duration_seconds_sum"] / result["seconds"],
        "queue_ms": d["rnn_classifier_queue_duration_seconds_sum"]
        / max(1.0, d["rnn_classifier_queue_duration_seconds_count"])
        * 1e3,
        "handler_ms": d["rnn_classifier_request_duration_seconds_sum"] / requests * 1e3
        if requests
        else 0.0,
    }
    out["text"] = (
        f"{out['batches']} batches of {out['mean_batch']:.1f} texts on average, "
        f"{out['forward_ms']:.2f} ms per forward pass (wall time of the model thread, "
        f"{out['forward_share'] * 100:.0f}% of the run), {out['queue_ms']:.2f} ms mean queue "
        f"wait, {out['handler_ms']:.2f} ms mean handler time"
    )
    return out


# ---------------------------------------------------------------- profiling


def ensure_py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if Path(found).exists():
        return found
    log("py-spy not found: pip install py-spy")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return str(Path(sys.executable).parent / "py-spy")


def profile_ours(
    wrk: str, ours: Server, bodies: Path, connections: int, seconds: int, cpu: int, out: Path
) -> dict[str, Any]:
    """py-spy (on the client core) while wrk drives our service: an SVG and a top-function table."""
    py_spy = ensure_py_spy()
    assert ours.proc is not None
    profiles: dict[str, Any] = {}
    stacks, svg = out.with_suffix(".txt"), out.with_suffix(".svg")
    for fmt, path in (("raw", stacks), ("flamegraph", svg)):
        command = [
            "taskset", "-c", str(cpu), py_spy, "record", "--pid", str(ours.proc.pid),
            "--duration", str(seconds), "--rate", "250", "--threads", "--nonblocking",
            "--format", fmt, "--output", str(path),
        ]  # fmt: skip
        spy = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        _children.append(spy)
        try:
            time.sleep(0.5)  # attached before the load starts
            profiles[fmt] = summarize(run_wrk(wrk, ours.port, bodies, connections, seconds, cpu), 1)
            out, _ = spy.communicate(timeout=seconds + 60)
        finally:
            stop_process_group(spy, grace=2)
            _children.remove(spy)
        if spy.returncode != 0 or not path.exists():
            raise RuntimeError(f"py-spy failed ({spy.returncode}): {out.decode(errors='replace')}")
    profiles["top"] = top_functions(stacks)
    profiles["svg"], profiles["stacks"] = _shown(svg), _shown(stacks)
    return profiles


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# Where a sample's time goes: the first rule (from the innermost frame outwards) that matches.
_CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("model forward pass (ModelRunner.predict, torch)",
     ("ModelRunner.predict", "torch/", "app/model.py", "numpy/")),
    ("batcher: submit / wake-ups / settling futures",
     ("Batcher.", "_settle", "app/batcher.py", "call_soon_threadsafe")),
    ("sync dependency run in the threadpool (AnyIO)",
     ("run_in_threadpool", "anyio/", "starlette/concurrency.py")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("tokenizer", ("app/tokenizer.py", "unicodedata")),
    ("request id (uuid4)", ("uuid.py",)),
    ("request parsing and validation (pydantic)",
     ("pydantic", "request_body_to_args", "_validate", "json/")),
    ("our handler and middleware (app/)", ("app/",)),
    ("FastAPI / Starlette routing and middleware", ("fastapi/", "starlette/")),
    ("uvicorn HTTP protocol", ("uvicorn/protocols", "httptools")),
    ("asyncio event loop and sockets", ("asyncio/", "uvloop", "uvicorn/")),
]  # fmt: skip


def _category(thread: str, frames: list[str]) -> str:
    if "AnyIO worker" in thread:
        return "sync dependency run in the threadpool (AnyIO)"
    for frame in reversed(frames):
        for category, markers in _CATEGORIES:
            if any(marker in frame for marker in markers):
                return category
    return "other"


def top_functions(collapsed: Path, limit: int = 15) -> dict[str, Any]:
    """Sample shares per thread, per part of the request path, and per function (self time),
    from py-spy's raw (collapsed stacks) output."""
    self_counts: Counter[str] = Counter()
    category_counts: Counter[str] = Counter()
    thread_counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = next((f for f in frames if f.startswith("thread ")), "?")
        thread = re.sub(r"^thread \(\w+\):?\s*", "", thread) or "?"
        frames = [f for f in frames if not f.startswith(("thread ", "process "))]
        if not frames:
            continue
        total += count
        thread_counts[thread] += count
        category_counts[_category(thread, frames)] += count
        self_counts[_frame_name(frames[-1])] += count

    def share(counter: Counter[str], n: int | None = limit) -> list[tuple[str, float]]:
        return [(name, c / total) for name, c in counter.most_common(n)] if total else []

    return {
        "samples": total,
        "threads": share(thread_counts, None),
        "categories": share(category_counts, None),
        "self": share(self_counts),
    }


def _frame_name(frame: str) -> str:
    """'predict (app/runner.py:34)' -> 'predict (app/runner.py)': one entry per function."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    path = path or where
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


# ---------------------------------------------------------------- report


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def render(report: dict[str, Any]) -> str:
    servers = report["servers"]
    res = report["results"]
    lines = [
        "# Benchmark: ours vs FastAPI no-op vs naive FastAPI",
        "",
        f"- Date: {report['date']}",
        f"- Command: `{report['command']}`"
        + (" (smoke mode: numbers are not meaningful)" if report["smoke"] else ""),
        f"- Machine: {report['nproc']} CPUs ({report['cpu_model']}), Linux {report['kernel']}, "
        f"Python {report['python']}, torch {report['torch']}, {report['wrk_version']}",
        f"- Pinning: every server on CPU {report['server_cpu']} (`taskset`, own session), "
        f"wrk and the latency probe on CPU {report['client_cpu']}; wrk -t1, "
        f"{report['warmup_s']} s warm-up then {report['duration_s']} s per scenario and server",
        f"- Load average (1/5/15 min) at start: {report['load_start']}; at end: "
        f"{report['load_end']} (a shared machine: other sessions' work competes for the cores)",
        f"- Code: {report['code']}",
        f"- Model: `{report['model_dir']}` ({report['model']})",
        f"- Bodies: {report['bodies']['texts']} review texts from data/rotten_tomatoes.csv, "
        f"shuffled; words per text min {report['bodies']['words_min']}, median "
        f"{report['bodies']['words_median']}, p90 {report['bodies']['words_p90']}, max "
        f"{report['bodies']['words_max']}",
        "- Servers: "
        + "; ".join(f"{s['key']} = `{s['command']}`" for s in servers)
        + f"; access log {'on' if report['access_log'] else 'off'} for all three",
        "",
        "req/s and texts/s count 2xx responses only; errors = socket errors + non-2xx responses. "
        "p50/p99 are wrk's, which include its coordinated-omission correction; the 1-connection "
        "scenario also has the client-timed latency of sequential requests (probe).",
        "",
    ]
    for scenario in SCENARIOS:
        rows = res[scenario.key]
        probe = report["probe"] if scenario.connections == 1 else None
        lines += [f"## {scenario.title}", ""]
        header = "| server | req/s | texts/s | p50 ms (wrk) | p99 ms (wrk) | errors |"
        rule = "|---|---:|---:|---:|---:|---:|"
        if probe:
            header += " p50 ms (probe) | p99 ms (probe) |"
            rule += "---:|---:|"
        lines += [header, rule]
        for s in servers:
            r = rows[s["key"]]
            row = (
                f"| {s['title']} | {r['req_s']:,.0f} | {r['texts_s']:,.0f} | {r['p50_ms']:.2f} "
                f"| {r['p99_ms']:.2f} | {r['errors']} |"
            )
            if probe:
                p = probe[s["key"]]
                row += f" {p['p50_ms']:.3f} | {p['p99_ms']:.3f} |"
            lines.append(row)
        ours, noop, naive = rows["ours"], rows["noop"], rows["naive"]
        summary = (
            f"Throughput ours / no-op: **{ratio(ours['texts_s'], noop['texts_s']):.2f}x**; "
            f"ours / naive: **{ratio(ours['texts_s'], naive['texts_s']):.2f}x**"
        )
        if probe:
            extra_us = (probe["ours"]["p50_ms"] - probe["naive"]["p50_ms"]) * 1000
            summary += f"; p50 ours - naive (probe): **{extra_us:+.0f} µs**"
        lines += ["", summary + "."]
        if "batcher" in ours:
            lines += ["", f"Ours, from its /metrics: {ours['batcher']['text']}."]
        lines.append("")
    lines += [
        "## Server memory (VmRSS of the server's process group)",
        "",
        "| server | after warm-up MiB | after the run MiB | growth |",
        "|---|---:|---:|---:|",
    ]
    for s in servers:
        lines.append(
            f"| {s['title']} | {s['rss_warm_kib'] / 1024:.1f} | {s['rss_after_kib'] / 1024:.1f} "
            f"| {s['rss_growth'] * 100:+.1f}% |"
        )
    lines += ["", "## Targets (issue 3)", "", "| target | measured | met |", "|---|---|---|"]
    for target in report["targets"]:
        lines.append(
            f"| {target['target']} | {target['measured']} | {'yes' if target['met'] else 'NO'} |"
        )
    if report.get("profile"):
        prof = report["profile"]
        top = prof["top"]
        lines += [
            "",
            "## Profile of ours, 1 text/request, 64 connections (py-spy)",
            "",
            f"`py-spy record --rate 250 --threads --nonblocking` for {report['duration_s']} s "
            f"while wrk ran ({top['samples']} samples; {prof['raw']['req_s']:,.0f} req/s under "
            f"the profiler); flame graph: `{prof['svg']}`, raw stacks: `{prof['stacks']}`. Shares "
            "are of samples of non-idle threads; on a contended core, a thread that is runnable "
            "but waiting for the CPU counts as non-idle too.",
            "",
            "| thread | share |",
            "|---|---:|",
            *(f"| {name} | {share * 100:.1f}% |" for name, share in top["threads"]),
            "",
            "| part of the request path (innermost matching frame) | share |",
            "|---|---:|",
            *(f"| {name} | {share * 100:.1f}% |" for name, share in top["categories"]),
            "",
            "| function (self time) | share |",
            "|---|---:|",
            *(f"| {name} | {share * 100:.1f}% |" for name, share in top["self"]),
        ]
    lines.append("")
    return "\n".join(lines)


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    res, probe = report["results"], report["probe"]
    c64, c32 = res["t1_c64"], res["t32_c4"]
    vs_noop = ratio(c64["ours"]["req_s"], c64["noop"]["req_s"])
    vs_naive = ratio(c64["ours"]["req_s"], c64["naive"]["req_s"])
    extra = probe["ours"]["p50_ms"] - probe["naive"]["p50_ms"]
    texts = ratio(c32["ours"]["texts_s"], c32["naive"]["texts_s"])
    growth = next(s["rss_growth"] for s in report["servers"] if s["key"] == "ours")
    errors = sum(r["ours"]["errors"] for r in res.values())
    return [
        {"target": "1 text/request, 64 conns: ours >= 0.6x no-op",
         "measured": f"{vs_noop:.2f}x", "met": vs_noop >= TARGET_VS_NOOP_64},
        {"target": "1 text/request, 64 conns: ours >= 2x naive",
         "measured": f"{vs_naive:.2f}x", "met": vs_naive >= TARGET_VS_NAIVE_64},
        {"target": "1 text/request, 1 conn: ours p50 <= naive p50 + 0.2 ms (probe)",
         "measured": f"{probe['ours']['p50_ms']:.3f} vs {probe['naive']['p50_ms']:.3f} ms "
                     f"({extra * 1000:+.0f} µs)",
         "met": extra <= TARGET_P50_EXTRA_MS},
        {"target": "32 texts/request, 4 conns: ours >= 1.5x naive texts/s",
         "measured": f"{texts:.2f}x", "met": texts >= TARGET_VS_NAIVE_TEXTS_32},
        {"target": "ours RSS after the run within 10% of after warm-up",
         "measured": f"{growth * 100:+.1f}%", "met": growth <= TARGET_RSS_GROWTH},
        {"target": "ours: no errors (socket or non-2xx) in any scenario",
         "measured": str(errors), "met": errors == 0},
    ]  # fmt: skip


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="~1 s per scenario, for CI")
    parser.add_argument("--duration", type=int, help="seconds per scenario (default 8, smoke 1)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds (default 2, smoke 1)")
    parser.add_argument("--model-dir", type=Path, help="default model_artifacts, else runs/seed")
    parser.add_argument("--output", type=Path, help="default bench/results.md (smoke: "
                        "bench/results.smoke.md)")  # fmt: skip
    parser.add_argument("--probe-requests", type=int, help="sequential requests per server "
                        "for the client-timed 1-connection latency (default 3000, smoke 300)")  # fmt: skip
    parser.add_argument("--access-log", action="store_true", help="uvicorn access log on")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy our service under 1 text/request at 64 connections")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="shuffle of the request texts")
    return parser.parse_args()


def default_model_dir() -> Path:
    if (ROOT / "model_artifacts" / "config.json").is_file():
        return Path("model_artifacts")
    log("model_artifacts/config.json missing: using runs/seed")
    return Path("runs/seed")


def main() -> None:
    args = parse_args()
    duration = args.duration or (1 if args.smoke else 8)
    warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 2)
    probe_requests = args.probe_requests or (300 if args.smoke else 3000)
    output = args.output or BENCH / ("results.smoke.md" if args.smoke else "results.md")
    model_dir = args.model_dir or default_model_dir()
    if not ((ROOT / model_dir) / "config.json").is_file():
        sys.exit(f"no trained model in {model_dir} (config.json missing)")

    # Ctrl-C raises KeyboardInterrupt; make SIGTERM/SIGHUP unwind through `finally` too.
    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    # Started in the background by a non-interactive shell, SIGINT arrives ignored: restore it.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    wrk = ensure_wrk()
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split(" [")[0]
    server_cpu, client_cpu = cpu_layout()
    os.sched_setaffinity(0, {client_cpu})  # this script's own work stays off the servers' core
    started = time.monotonic()
    load_start = loadavg()
    code = code_version()
    workdir = Path(tempfile.mkdtemp(prefix="rnn-bench-"))
    bodies_1, bodies_32, body_stats = write_bodies(workdir, args.seed)
    servers = make_servers(model_dir, workdir, args.access_log)
    by_key = {s.key: s for s in servers}
    bodies = {1: bodies_1, 32: bodies_32}
    first_body = {n: path.read_bytes().splitlines()[0] for n, path in bodies.items()}
    report: dict[str, Any] = {"results": {s.key: {} for s in SCENARIOS}}
    keep_logs = False
    try:
        log(f"model {model_dir}; servers on CPU {server_cpu}, load on CPU {client_cpu}; "
            f"logs in {workdir}")  # fmt: skip
        for server in servers:
            start_server(server, server_cpu)
        for server in servers:
            wait_ready(server, timeout=180)
            for n in (1, 32):
                check_answer(server, first_body[n], n)
            log(f"{server.key} ready on port {server.port} (pid {server.proc.pid})")  # type: ignore[union-attr]

        for server in servers:  # warm-up: both body shapes, then the RSS baseline
            run_wrk(wrk, server.port, bodies[1], 64, warmup, client_cpu)
            run_wrk(wrk, server.port, bodies[32], 4, warmup, client_cpu)
            server.rss_warm_kib = rss_kib(server.proc.pid)  # type: ignore[union-attr]
        log(
            "warm-up done: RSS "
            + ", ".join(f"{s.key} {s.rss_warm_kib // 1024} MiB" for s in servers)
        )

        for turn, scenario in enumerate(SCENARIOS):
            # Rotate who goes first, so slow drift of a shared machine does not favour one server.
            for server in servers[turn % 3 :] + servers[: turn % 3]:
                if not args.smoke:
                    run_wrk(wrk, server.port, bodies[scenario.texts], scenario.connections,
                            warmup, client_cpu)  # fmt: skip
                before = batcher_metrics(server) if server.key == "ours" else None
                raw = run_wrk(wrk, server.port, bodies[scenario.texts], scenario.connections,
                              duration, client_cpu)  # fmt: skip
                result = summarize(raw, scenario.texts)
                if before is not None:
                    result["batcher"] = batcher_delta(before, batcher_metrics(server), result)
                    log(f"  ours batcher: {result['batcher']['text']}")
                report["results"][scenario.key][server.key] = result
                log(f"{scenario.title:34} {server.key:5}: {result['req_s']:8,.0f} req/s "
                    f"{result['texts_s']:9,.0f} texts/s  p50 {result['p50_ms']:6.2f} ms  "
                    f"p99 {result['p99_ms']:7.2f} ms  errors {result['errors']}")  # fmt: skip

        rounds = 3 if args.smoke else 6
        report["probe"] = run_probe(servers, bodies[1], probe_requests, rounds, client_cpu)
        for key, p in report["probe"].items():
            log(
                f"probe {key:5}: p50 {p['p50_ms']:.3f} ms  p90 {p['p90_ms']:.3f} ms  "
                f"p99 {p['p99_ms']:.3f} ms  ({p['n']} sequential requests, {p['non2xx']} non-2xx)"
            )

        for server in servers:
            server.rss_after_kib = rss_kib(server.proc.pid)  # type: ignore[union-attr]

        if args.profile:
            log("profiling ours under 1 text/request at 64 connections (py-spy)")
            # results.md -> profile.svg + profile.txt beside it (results-x.md -> profile-x.*)
            out = output.with_name(output.stem.replace("results", "profile", 1) or "profile")
            report["profile"] = profile_ours(
                wrk, by_key["ours"], bodies[1], 64, duration, client_cpu, out
            )
    except BaseException:
        keep_logs = True
        for server in servers:
            if server.proc is not None:
                log(f"--- {server.key} log tail ({server.log_path}):\n{log_tail(server)}")
        raise
    finally:
        for proc in list(_children):
            stop_process_group(proc, grace=2)
        for server in servers:
            stop_process_group(server.proc)
        if not keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        log("servers stopped: " + ", ".join(
            f"{s.key} (pid {s.proc.pid}, exit {s.proc.returncode})" for s in servers if s.proc
        ))  # fmt: skip

    import torch  # only for the version in the report; after the servers are gone

    config = json.loads(((ROOT / model_dir) / "config.json").read_text())
    m = config.get("model", {})
    report.update(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=shlex.join(["python", *sys.argv]),
        smoke=args.smoke,
        nproc=os.cpu_count(),
        cpu_model=cpu_model(),
        kernel=platform.release(),
        python=platform.python_version(),
        torch=torch.__version__,
        wrk_version=wrk_version.strip(),
        server_cpu=server_cpu,
        client_cpu=client_cpu,
        warmup_s=warmup,
        duration_s=duration,
        load_start=load_start,
        load_end=loadavg(),
        model_dir=str(model_dir),
        code=code,
        model=f"{config.get('name')} {config.get('version')}: {m.get('rnn_type')}, "
        f"embedding {m.get('embedding_dim')}, hidden {m.get('hidden_dim')}, "
        f"{'bi' if m.get('bidirectional') else 'uni'}directional, pooling {m.get('pooling')}, "
        f"max_length {config.get('max_length')}",
        bodies=body_stats,
        access_log=args.access_log,
        elapsed_s=round(time.monotonic() - started, 1),
        servers=[
            {
                "key": s.key,
                "title": s.title,
                "command": shlex.join(
                    [f"{k}={s.env[k]}" for k in s.shown_env]
                    + [Path(s.command[0]).name, *s.command[1:]]
                ).replace(str(BENCH), "bench"),
                "rss_warm_kib": s.rss_warm_kib,
                "rss_after_kib": s.rss_after_kib,
                "rss_growth": ratio(s.rss_after_kib - s.rss_warm_kib, s.rss_warm_kib),
            }
            for s in servers
        ],
    )
    report["targets"] = check_targets(report)
    output.write_text(render(report), encoding="utf-8")
    output.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    for target in report["targets"]:
        log(f"{'met   ' if target['met'] else 'MISSED'} {target['target']}: {target['measured']}")
    log(f"wrote {_shown(output)} "
        f"in {report['elapsed_s']} s")  # fmt: skip


if __name__ == "__main__":
    main()
