"""What serving costs besides throughput, for bench/run.py: start-up time, memory of a ready worker,
whether torch is loaded, and what a second worker adds on a second core.

Each server here runs alone (not beside the others), so start-up and memory are its own.
"""

import http.client
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from loadgen import run_wrk, summarize
from servers import (
    Server,
    free_port,
    group_pids,
    log,
    rss_kib,
    start_server,
    stop_process_group,
    wait_ready,
)

STARTS = 3  # start-ups timed per server; the median is reported
WARM_REQUESTS = 500  # requests before the "ready worker" memory is read


def _post(port: int, body: bytes, times: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(times):
        conn.request("POST", "/classify", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"/classify answered {response.status}")
    conn.close()


def torch_loaded(pgid: int) -> bool:
    """Whether any process of the server has torch's library mapped."""
    for pid in group_pids(pgid):
        try:
            if "libtorch" in Path(f"/proc/{pid}/maps").read_text():
                return True
        except OSError:
            continue
    return False


def start_up_and_memory(
    server: Server, cpu: int, body: bytes, starts: int = STARTS
) -> dict[str, Any]:
    """Median seconds from exec to ready over `starts` starts; then, in the last one, the RSS of
    the ready worker after WARM_REQUESTS one-text requests."""
    seconds: list[float] = []
    result: dict[str, Any] = {}
    for attempt in range(starts):
        started = time.monotonic()
        start_server(server, cpu)
        try:
            wait_ready(server, timeout=180)
            seconds.append(time.monotonic() - started)
            if attempt == starts - 1:
                assert server.proc is not None
                result["rss_ready_kib"] = rss_kib(server.proc.pid)
                _post(server.port, body, WARM_REQUESTS)
                result["rss_after_500_kib"] = rss_kib(server.proc.pid)
                result["torch_loaded"] = torch_loaded(server.proc.pid)
        finally:
            stop_process_group(server.proc)
            server.proc = None
    result["start_s"] = statistics.median(seconds)
    result["starts_s"] = [round(s, 2) for s in seconds]
    log(
        f"{server.key:8}: ready in {result['start_s']:.2f} s (median of {seconds}); RSS "
        f"{result['rss_ready_kib'] // 1024} MiB ready, {result['rss_after_500_kib'] // 1024} MiB "
        f"after {WARM_REQUESTS} requests; torch loaded: {result['torch_loaded']}"
    )
    return result


def two_workers(
    ours: Server, wrk: str, bodies: Path, cpus: tuple[int, int], seconds: int, warmup: int
) -> dict[str, Any]:
    """1 text/request at 64 connections: WORKERS=1 on one CPU, then WORKERS=2 on both, wrk on
    the second CPU both times (it shares that core with the second worker: a 2-core machine has
    no third one for the load)."""
    out: dict[str, Any] = {}
    port = free_port()
    for workers, server_cpus in ((1, str(cpus[0])), (2, f"{cpus[0]},{cpus[1]}")):
        env = {**ours.env, "WORKERS": str(workers), "THREADS": "1", "PORT": str(port)}
        server = replace(ours, env=env, port=port, proc=None, results={})
        start_server(server, server_cpus)
        try:
            wait_ready(server, timeout=180)
            run_wrk(wrk, server.port, bodies, 64, warmup, cpus[1])
            out[str(workers)] = summarize(
                run_wrk(wrk, server.port, bodies, 64, seconds, cpus[1]), 1
            )
        finally:
            stop_process_group(server.proc)
        r = out[str(workers)]
        log(
            f"WORKERS={workers} on CPU {server_cpus}: {r['req_s']:,.0f} req/s, p99 {r['p99_ms']:.1f} ms"
        )
    return out
