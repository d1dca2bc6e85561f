#!/usr/bin/env python3
"""Soak test: our service (`python -m app`) under 128 connections for 60 s, every answer checked,
once per queue time bound (MAX_QUEUE_MS): none, and the default, to show what the bound does.

Each connection loops: 1 to 32 texts per request, texts from data/rotten_tomatoes.csv, some of them
several reviews joined so that they run past the model's max length. Counted: 5xx, connection
errors, and invalid answers (a 200 that is not a correct classification, a 429 without Retry-After
or the error shape, any other status). The server's RSS (VmRSS) is read at ready, after a warm-up,
every few seconds and at the end. Writes bench/soak-results.md and exits 1 unless there are zero
5xx, zero connection errors, zero invalid answers and RSS growth after warm-up within 10%.

    python bench/soak.py                       # 60 s, 128 connections, MAX_QUEUE_MS 0 and default
    python bench/soak.py --duration 10         # shorter
    python bench/soak.py --max-queue-ms 0 250 500 1000
"""

import argparse
import asyncio
import csv
import datetime as dt
import math
import os
import platform
import random
import shlex
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# bench/servers.py: run as a script, this file's directory is first on sys.path.
from servers import free_port

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "rotten_tomatoes.csv"
RESULTS = ROOT / "bench" / "soak-results.md"
MAX_RSS_GROWTH = 0.10
DEFAULT_MAX_QUEUE_MS = Settings.model_fields["max_queue_ms"].default


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: Counter[str] = field(default_factory=Counter)
    invalid: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    answered_latencies: list[float] = field(default_factory=list)  # of the 200s
    texts: int = 0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_texts() -> list[str]:
    with DATA.open(encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f) if row["text"].strip()]


def make_body(rng: random.Random, reviews: list[str], max_texts: int) -> list[str]:
    """Mostly single reviews; one text in five joins 2 to 8 of them (long, often truncated)."""
    texts = []
    for _ in range(rng.randint(1, max_texts)):
        joined = 1 if rng.random() < 0.8 else rng.randint(2, 8)
        texts.append(" ".join(rng.choices(reviews, k=joined)))
    return texts


def check_answer(response: httpx.Response, texts: list[str], labels: list[str]) -> str | None:
    """Why the answer is wrong, or None if it is a correct 200 or a well-formed 429."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code}: body is not JSON"
    if response.status_code == 429:
        ok = (
            response.headers.get("retry-after")
            and body.get("error", {}).get("type") == "overloaded"
        )
        return None if ok else f"429 without Retry-After or type overloaded: {body}"
    if response.status_code != 200:
        return f"unexpected {response.status_code}: {str(body)[:200]}"
    results = body.get("results")
    if not isinstance(results, list) or len(results) != len(texts):
        return f"200 with {len(results or [])} results for {len(texts)} texts"
    for result in results:
        probabilities = result.get("probabilities", {})
        if sorted(probabilities) != sorted(labels):
            return f"200 with labels {sorted(probabilities)}, expected {sorted(labels)}"
        if not math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-4):
            return f"200 with probabilities summing to {sum(probabilities.values())}"
        if result.get("label") not in labels or result.get("score") != max(probabilities.values()):
            return f"200 with label/score not the most probable: {result}"
        if not isinstance(result.get("tokens"), int) or not isinstance(
            result.get("truncated"), bool
        ):
            return f"200 with bad tokens/truncated: {result}"
    return None


@dataclass(frozen=True)
class Load:
    url: str
    reviews: list[str]
    labels: list[str]
    max_texts: int
    deadline: float
    # Plain HTTP to 127.0.0.1; shared so that 128 clients do not each load the CA bundle.
    tls: ssl.SSLContext = field(default_factory=ssl.create_default_context)


async def connection(load: Load, rng: random.Random, tally: Tally) -> None:
    """One keep-alive connection, one request at a time, until the deadline; after a 429 it
    waits the Retry-After seconds, as a client should."""
    # A client per connection: httpx's shared pool costs O(connections) per request at 128.
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(limits=limits, timeout=60, verify=load.tls) as client:
        while time.monotonic() < load.deadline:
            texts = make_body(rng, load.reviews, load.max_texts)
            started = time.perf_counter()
            try:
                response = await client.post(load.url, json={"texts": texts})
            except httpx.TransportError as exc:
                tally.connection_errors[type(exc).__name__] += 1
                continue
            tally.latencies.append(time.perf_counter() - started)
            tally.statuses[response.status_code] += 1
            if response.status_code >= 500:
                continue  # counted as 5xx, not again as invalid
            problem = check_answer(response, texts, load.labels)
            if problem:
                tally.invalid.append(problem)
            elif response.status_code == 200:
                tally.texts += len(texts)
                tally.answered_latencies.append(tally.latencies[-1])
            else:  # a well-behaved client waits as told before it sends again
                pause = float(response.headers["retry-after"])
                await asyncio.sleep(min(pause, max(0.0, load.deadline - time.monotonic())))


async def watch_rss(pid: int, deadline: float, samples: list[tuple[float, float]]) -> None:
    start = time.monotonic()
    while time.monotonic() < deadline:
        samples.append((time.monotonic() - start, rss_mib(pid)))
        await asyncio.sleep(5)


async def soak(args: argparse.Namespace, base_url: str, pid: int) -> dict[str, Any]:
    rng = random.Random(args.seed)
    labels = httpx.get(base_url + "/model").json()["labels"]
    load = Load(
        base_url + "/classify",
        load_texts(),
        labels,
        args.max_texts,
        time.monotonic() + args.duration,
    )
    rss = {"at ready": rss_mib(pid)}
    cpu = {"server": cpu_seconds(pid), "client": sum(os.times()[:2])}
    tally = Tally()
    samples: list[tuple[float, float]] = []
    workers = [
        connection(load, random.Random(rng.random()), tally) for _ in range(args.connections)
    ]
    await asyncio.gather(*workers, watch_rss(pid, load.deadline, samples))
    rss["end"] = rss_mib(pid)
    cpu = {
        "server": cpu_seconds(pid) - cpu["server"],
        "client": sum(os.times()[:2]) - cpu["client"],
    }
    metrics = httpx.get(base_url + "/metrics").text
    warm = [mib for t, mib in samples if t >= args.warmup]
    rss["after warm-up"] = warm[0] if warm else rss["at ready"]
    rss["max"] = max([mib for _, mib in samples] + [rss["end"]])
    return {
        "tally": tally,
        "rss": rss,
        "samples": samples,
        "server": server_times(metrics),
        "cpu": cpu,
    }


def server_times(metrics: str) -> dict[str, float]:
    """Mean seconds per /classify request in the server (arrival to response, every status) and
    per text in the queue; label sets of one histogram are summed."""
    values: dict[str, float] = {}
    for line in metrics.splitlines():
        series, _, value = line.partition(" ")
        name, _, labels = series.partition("{")
        if labels and 'path="/classify"' not in labels:
            continue
        if name.startswith("rnn_classifier_") and name.endswith(("_sum", "_count")):
            values[name] = values.get(name, 0.0) + float(value)

    def mean(histogram: str) -> float:
        count = values.get(f"rnn_classifier_{histogram}_count", 0)
        return values.get(f"rnn_classifier_{histogram}_sum", 0) / count if count else math.nan

    return {
        "request": mean("request_duration_seconds"),
        "queue": mean("queue_duration_seconds"),
        "batch": mean("batch_size"),
    }


def start_server(log_path: Path, port: int, max_queue_ms: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "1",
           "MAX_QUEUE_MS": str(max_queue_ms)}  # fmt: skip
    env.setdefault("LOG_LEVEL", "warning")  # no access line per request in a long run
    with log_path.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own session: our Ctrl-C does not reach it
        )


def wait_ready(proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(base_url + "/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server not ready in 120 s")


def stop_server(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM by PID (a graceful drain), SIGKILL if it does not exit in 40 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else math.nan


def run_section(
    args: argparse.Namespace, max_queue_ms: float, outcome: dict[str, Any], failures: list[str]
) -> list[str]:
    tally: Tally = outcome["tally"]
    rss: dict[str, float] = outcome["rss"]
    server: dict[str, float] = outcome["server"]
    cpu: dict[str, float] = outcome["cpu"]
    total = sum(tally.statuses.values())
    growth = rss["end"] / rss["after warm-up"] - 1
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items())) or "none"
    errors = ", ".join(f"{k}: {n}" for k, n in tally.connection_errors.items()) or "0"
    series = ", ".join(f"{t:.0f} s {mib:.0f}" for t, mib in outcome["samples"])
    lines = [
        f"## MAX_QUEUE_MS={max_queue_ms:g}",
        "",
        f"**{'PASS' if not failures else 'FAIL'}**"
        + ("" if not failures else ": " + "; ".join(failures)),
        "",
        f"- Load average {os.getloadavg()[0]:.1f} at the end of this run",
        "",
        "| | |",
        "|---|---|",
        f"| Requests | {total} ({total / args.duration:.0f}/s) |",
        f"| Texts classified | {tally.texts} ({tally.texts / args.duration:.0f}/s) |",
        f"| Responses by status | {statuses} |",
        f"| 5xx | {tally.server_errors} |",
        f"| Connection errors | {errors} |",
        f"| Invalid non-5xx answers | {len(tally.invalid)} |",
        f"| Latency at the client, p50 / p99 | {percentile(tally.latencies, 50) * 1000:.0f} ms / "
        f"{percentile(tally.latencies, 99) * 1000:.0f} ms |",
        f"| In the server, mean per request / queue wait per text | "
        f"{server['request'] * 1000:.0f} ms / {server['queue'] * 1000:.0f} ms |",
        f"| Mean texts per forward pass | {server['batch']:.1f} |",
        f"| CPU time used, server / this client | {cpu['server']:.0f} s / {cpu['client']:.0f} s "
        f"(of {args.duration * (os.cpu_count() or 1):.0f} s the CPUs had) |",
        f"| RSS at ready / after {args.warmup:.0f} s warm-up / end / max | "
        f"{rss['at ready']:.0f} / {rss['after warm-up']:.0f} / {rss['end']:.0f} / "
        f"{rss['max']:.0f} MiB |",
        f"| RSS growth after warm-up | {growth * 100:+.1f}% (limit +{MAX_RSS_GROWTH * 100:.0f}%) |",
        "",
        f"RSS every 5 s (MiB): {series}",
        "",
    ]
    if tally.invalid:
        lines += ["", "First invalid answers:", "", *(f"- {p}" for p in tally.invalid[:10])]
    return lines


def summary_row(seconds: float, max_queue_ms: float, outcome: dict[str, Any]) -> str:
    tally: Tally = outcome["tally"]
    total = sum(tally.statuses.values())
    refused = tally.statuses.get(429, 0) / total if total else 0.0
    return (
        f"| {max_queue_ms:g} | {total / seconds:.0f} | {tally.texts / seconds:.0f} | "
        f"{refused * 100:.1f}% | {percentile(tally.latencies, 50) * 1000:.0f} ms | "
        f"{percentile(tally.latencies, 99) * 1000:.0f} ms | "
        f"{percentile(tally.answered_latencies, 50) * 1000:.0f} ms | "
        f"{percentile(tally.answered_latencies, 99) * 1000:.0f} ms | {tally.server_errors} | "
        f"{sum(tally.connection_errors.values())} |"
    )


def report(args: argparse.Namespace, runs: list[tuple[float, dict[str, Any], list[str]]]) -> str:
    failed = [f"MAX_QUEUE_MS={ms:g}: {'; '.join(f)}" for ms, _, f in runs if f]
    lines = [
        "# Soak test",
        "",
        f"**{'PASS' if not failed else 'FAIL'}**"
        + ("" if not failed else ": " + "; ".join(failed)),
        "",
        f"- Command: `{shlex.join(['python', 'bench/soak.py', *sys.argv[1:]])}`",
        f"- When: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs (client and server share them), "
        f"Python {platform.python_version()}",
        f"- Load: {args.duration:.0f} s per run, {args.connections} connections, 1 to "
        f"{args.max_texts} texts per request (one text in five is 2 to 8 reviews joined), seed "
        f"{args.seed}; server `python -m app`, WORKERS=1, default limits but MAX_QUEUE_MS",
        "",
        "| MAX_QUEUE_MS | requests/s | texts/s | 429 share | p50 | p99 | p50 of 200s | "
        "p99 of 200s | 5xx | connection errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(summary_row(args.duration, ms, outcome) for ms, outcome, _ in runs),
        "",
        "p50/p99 are at the client, over every answer (200 and 429), then over the 200s alone. "
        "A client that gets a 429 waits its Retry-After seconds before it sends again. 429 answers are expected at "
        "this concurrency (128 x up to 32 texts is more than the queue may hold, by count or by "
        "time) and are checked for Retry-After and the error shape. RSS growth is measured from "
        "the end of the warm-up, after the allocator has reached its working size, to the end of "
        "the run.",
        "",
    ]
    for ms, outcome, failures in runs:
        lines += [*run_section(args, ms, outcome, failures), ""]
    return "\n".join(lines)


def soak_once(args: argparse.Namespace, max_queue_ms: float) -> tuple[dict[str, Any], list[str]]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        log_path = Path(tmp) / "server.log"
        proc = start_server(log_path, port, max_queue_ms)
        try:
            wait_ready(proc, base_url, log_path)
            outcome = asyncio.run(soak(args, base_url, proc.pid))
        finally:
            returncode = stop_server(proc)
        server_log = log_path.read_text(errors="replace")
    tally: Tally = outcome["tally"]
    rss: dict[str, float] = outcome["rss"]
    failures = []
    if tally.server_errors:
        failures.append(f"{tally.server_errors} 5xx")
    if tally.connection_errors:
        failures.append(f"{sum(tally.connection_errors.values())} connection errors")
    if tally.invalid:
        failures.append(f"{len(tally.invalid)} invalid answers")
    if rss["end"] > rss["after warm-up"] * (1 + MAX_RSS_GROWTH):
        failures.append("RSS grew more than 10%")
    if returncode not in (0, -15):  # uvicorn re-raises SIGTERM after a clean drain
        failures.append(f"server exited with {returncode}")
    if failures:
        print("server log (tail):\n" + server_log[-3000:], file=sys.stderr)
    return outcome, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per run")
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--max-texts", type=int, default=32, help="texts per request: 1 to this")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before RSS baseline")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-queue-ms",
        type=float,
        nargs="+",
        default=[0.0, DEFAULT_MAX_QUEUE_MS],
        help="one run per value (0 = no time bound)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs = [(ms, *soak_once(args, ms)) for ms in args.max_queue_ms]
    text = report(args, runs)
    args.output.write_text(text, encoding="utf-8")
    print(text)
    return 1 if any(failures for _, _, failures in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
