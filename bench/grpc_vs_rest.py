#!/usr/bin/env python3
"""gRPC against REST on the same server: one `python -m app` on one core serving both, the load
from the other core, in rounds that alternate the protocol so machine noise falls on both.

  - 1 text per call, 64 in flight: req/s (REST /classify under wrk; gRPC ModelInfer)
  - 32 texts per call, 4 in flight: texts/s (REST JSON; gRPC with raw contents, what
    tritonclient sends)
  - 1 text, 1 in flight: p50 latency, timed by the client (REST: bench/latency_probe.py over
    one keep-alive connection; gRPC: a blocking channel)
  - grpcio's floor: ServerLive (no work) at 64 in flight
  - peak RSS of a server with gRPC on against one with GRPC_PORT=0, after the same REST load

The gRPC load generator is this file with --client: grpc.aio on one channel, N calls kept in
flight, each a pre-serialized ModelInferRequest of real review texts (built with tritonclient's
messages, the published proto), sent as bytes: the client costs a C library call per request,
as wrk's does for REST, so neither protocol is measured through a slow client. Results go to
bench/grpc.md.

    python bench/grpc_vs_rest.py                 # 2 rounds of 8 s per phase, ~3 min
    python bench/grpc_vs_rest.py --smoke         # every phase briefly; asserts only no errors
"""

import argparse
import asyncio
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loadgen import run_probe, run_wrk, summarize
from run import write_bodies
from servers import (
    BENCH,
    ROOT,
    Server,
    code_version,
    cpu_layout,
    cpu_model,
    ensure_wrk,
    free_port,
    loadavg,
    log,
    start_server,
    stop_process_group,
    wait_ready,
    write_results,
)

INFER = "/inference.GRPCInferenceService/ModelInfer"
LIVE = "/inference.GRPCInferenceService/ServerLive"  # no work: grpcio's own cost per call
PHASES = [("t1_c64", 1, 64), ("t32_c4", 32, 4), ("t1_c1", 1, 1)]


def infer_bodies(bodies: Path, model: str) -> list[bytes]:
    """The REST bodies' texts as serialized ModelInferRequests, texts in raw_input_contents."""
    from tritonclient.grpc import service_pb2

    requests = []
    for line in bodies.read_text().splitlines():
        texts = [t.encode() for t in json.loads(line)["texts"]]
        request = service_pb2.ModelInferRequest(model_name=model)
        request.inputs.add(name="TEXT", datatype="BYTES", shape=[len(texts)])
        request.raw_input_contents.append(b"".join(len(t).to_bytes(4, "little") + t for t in texts))
        requests.append(request.SerializeToString())
    return requests


def grpc_sequential(address: str, requests: list[bytes], seconds: float) -> dict[str, Any]:
    """One call at a time on a blocking channel, each timed by the client (as latency_probe.py
    times REST)."""
    import grpc

    latencies: list[float] = []
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(INFER)
        call(requests[0])
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            call(requests[len(latencies) % len(requests)])
            latencies.append(time.perf_counter() - started)
    return summary(latencies, seconds, 0)


def summary(latencies: list[float], elapsed: float, errors: int) -> dict[str, Any]:
    latencies.sort()
    return {
        "req_s": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "errors": errors,
        "requests": len(latencies),
    }


async def grpc_load(
    address: str, requests: list[bytes], in_flight: int, seconds: float, method: str
) -> dict[str, Any]:
    import grpc

    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(method)
        await call(requests[0])  # connected and warm
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal errors
            index = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    await call(requests[index % len(requests)])
                    latencies.append(time.perf_counter() - started)
                except grpc.aio.AioRpcError:
                    errors += 1
                index += in_flight

        began = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(in_flight)))
        elapsed = time.perf_counter() - began
    return summary(latencies, elapsed, errors)


def run_grpc(
    port: int,
    bodies: Path,
    model: str,
    in_flight: int,
    seconds: int,
    cpu: int,
    method: str = INFER,
) -> dict[str, Any]:
    command = [
        "taskset", "-c", str(cpu), sys.executable, __file__, "--client", f"127.0.0.1:{port}",
        "--bodies", str(bodies), "--model", model, "--in-flight", str(in_flight),
        "--seconds", str(seconds), "--method", method,
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def server(logs: Path, model_dir: Path, grpc_port: int) -> Server:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
        "MODEL_DIR": str(model_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GRPC_PORT": str(grpc_port),
        "WORKERS": "1",
        "THREADS": "1",
        "LOG_LEVEL": "warning",
    }
    name = "grpc_on" if grpc_port else "rest_only"
    return Server(name, name, [sys.executable, "-m", "app"], env, port, logs / f"{name}.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=BENCH / "grpc.md")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--bodies", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--in-flight", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--method", default=INFER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        requests = infer_bodies(args.bodies, args.model) if args.method == INFER else [b""]
        if args.in_flight == 1:
            result = grpc_sequential(args.client, requests, args.seconds)
        else:
            load = grpc_load(args.client, requests, args.in_flight, args.seconds, args.method)
            result = asyncio.run(load)
        print(json.dumps(result))
        return
    rounds, seconds = (1, 2) if args.smoke else (args.rounds, args.seconds)
    server_cpu, client_cpu = cpu_layout()
    wrk = ensure_wrk()
    model_dir = ROOT / "model_artifacts"
    model = json.loads((model_dir / "config.json").read_text())["name"]
    work = Path(tempfile.mkdtemp(prefix="grpc-bench-"))
    one, many, _ = write_bodies(work, seed=0)
    bodies = {1: one, 32: many}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    on = server(work, model_dir, free_port())
    grpc_port = int(on.env["GRPC_PORT"])
    start_server(on, server_cpu)
    try:
        wait_ready(on, 120)
        for round_ in range(rounds):
            for key, texts, in_flight in PHASES:
                order = ["rest", "grpc"] if round_ % 2 == 0 else ["grpc", "rest"]
                for protocol in order:
                    log(f"round {round_ + 1}: {key} {protocol}")
                    if protocol == "rest" and in_flight == 1:
                        count = 200 if args.smoke else 2000
                        result = run_probe([on], bodies[texts], count, 1, client_cpu)["grpc_on"]
                        result["errors"] = result["non2xx"]
                        result["req_s"] = 1000 / result["mean_ms"]
                    elif protocol == "rest":
                        raw = run_wrk(wrk, on.port, bodies[texts], in_flight, seconds, client_cpu)
                        result = summarize(raw, texts)
                    else:
                        result = run_grpc(
                            grpc_port, bodies[texts], model, in_flight, seconds, client_cpu
                        )
                    result["texts_s"] = result["req_s"] * texts
                    results.setdefault(key, {}).setdefault(protocol, []).append(result)
            log(f"round {round_ + 1}: grpcio floor (ServerLive, 64 in flight)")
            floor = run_grpc(grpc_port, one, model, 64, seconds, client_cpu, LIVE)
            results.setdefault("floor", {}).setdefault("grpc", []).append(floor)
        assert on.proc is not None
        rss_on = peak_rss_mib(on.proc.pid)
    finally:
        stop_process_group(on.proc)
    # The memory gRPC costs: the same REST load on a server with and without it.
    peaks = {}
    for grpc in (free_port(), 0):
        alone = server(work, model_dir, grpc)
        start_server(alone, server_cpu)
        try:
            wait_ready(alone, 120)
            run_wrk(wrk, alone.port, one, 64, seconds, client_cpu)
            assert alone.proc is not None
            peaks[alone.key] = peak_rss_mib(alone.proc.pid)
        finally:
            stop_process_group(alone.proc)
    errors = sum(r["errors"] for phase in results.values() for rs in phase.values() for r in rs)
    if args.smoke:
        assert errors == 0, f"{errors} calls failed"
        log("smoke: every phase ran, no call failed")
        return
    write_results(args.out, report(results, peaks, rss_on, rounds, seconds, errors))


def median(results: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in results))


def report(
    results: dict[str, dict[str, list[dict[str, Any]]]],
    peaks: dict[str, float],
    rss_on: float,
    rounds: int,
    seconds: int,
    errors: int,
) -> list[str]:
    rows = [
        ("1 text/call, 64 in flight", "t1_c64", "req_s", "req/s", ">= 1.0x"),
        ("32 texts/call, 4 in flight", "t32_c4", "texts_s", "texts/s", ">= 1.3x"),
        ("1 text, 1 in flight", "t1_c1", "p50_ms", "p50 ms", "<= 1.0x"),
    ]
    lines = [
        "# gRPC against REST, same server",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {code_version()}; {cpu_model()}; server on one"
        f" core, load on the other; load average at the end {loadavg()}. {rounds} rounds of "
        f"{seconds} s per phase, protocols alternating; medians over rounds. Failed calls: {errors}.",
        "A machine shared with other work: read the ratios, not the absolute figures.",
        "",
        "`python bench/grpc_vs_rest.py` (REST: wrk on /classify; gRPC: grpc.aio ModelInfer with raw "
        "contents)",
        "",
        "| scenario | REST | gRPC | gRPC / REST | target |",
        "|---|---:|---:|---:|---|",
    ]
    for title, key, metric, unit, target in rows:
        rest, grpc = median(results[key]["rest"], metric), median(results[key]["grpc"], metric)
        lines.append(
            f"| {title} ({unit}) | {rest:,.1f} | {grpc:,.1f} | {grpc / rest:.2f}x | {target} |"
        )
    extra = peaks["grpc_on"] - peaks["rest_only"]
    floor = median(results["floor"]["grpc"], "req_s")
    lines += [
        "",
        f"grpcio's floor on this core: ServerLive (no work at all) at 64 in flight, {floor:,.0f} "
        "calls/s.",
        "",
        f"Peak RSS (VmHWM) after the same REST load (64 connections, {seconds} s): gRPC on "
        f"{peaks['grpc_on']:.1f} MiB, GRPC_PORT=0 {peaks['rest_only']:.1f} MiB: +{extra:.1f} MiB "
        f"(target <= +25 MiB). After every phase above, gRPC's included: {rss_on:.1f} MiB.",
        "",
        "p99 (ms), medians over rounds:",
        "",
        "| scenario | REST | gRPC |",
        "|---|---:|---:|",
    ]
    for title, key, *_ in rows:
        lines.append(
            f"| {title} | {median(results[key]['rest'], 'p99_ms'):.2f} | "
            f"{median(results[key]['grpc'], 'p99_ms'):.2f} |"
        )
    return lines


if __name__ == "__main__":
    main()
