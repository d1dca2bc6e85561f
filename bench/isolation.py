#!/usr/bin/env python3
"""One model flooded, another one asked: does the light one stay fast?

    python bench/isolation.py        # ~1 min; writes bench/isolation.md

Two models in one repository (both the bundled model, as "heavy" and "light"), one server on one
pinned CPU. The light model's latency is probed (sequential single-text requests) alone, then
while wrk floods the heavy one with 32-text requests at 16 connections. Each loaded version has
its own queue and batches, so the light model's texts never wait behind the heavy one's queue:
at most behind the batch that is running.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from loadgen import PROBE, run_wrk, summarize
from servers import (
    ROOT,
    Server,
    cpu_layout,
    cpu_model,
    ensure_wrk,
    free_port,
    loadavg,
    log,
    start_server,
    stop_process_group,
    wait_ready,
)

DATA = ROOT / "data" / "rotten_tomatoes.csv"
FLOOD_SECONDS = 25


def bodies(directory: Path) -> tuple[Path, Path]:
    import csv
    import random

    with DATA.open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["text"].strip()]
    rng = random.Random(0)
    light = directory / "light.jsonl"
    light.write_text(
        "".join(json.dumps({"texts": [t], "model": "light"}) + "\n" for t in texts[:500])
    )
    heavy = directory / "heavy.jsonl"
    heavy.write_text(
        "".join(
            json.dumps({"texts": rng.sample(texts, 32), "model": "heavy"}) + "\n"
            for _ in range(256)
        )
    )
    return light, heavy


def probe(port: int, light: Path, cpu: int) -> dict[str, float]:
    command = ["taskset", "-c", str(cpu), sys.executable, str(PROBE), "--bodies", str(light),
               "--requests", "1500", "--rounds", "1", "--warmup", "100", f"light={port}"]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    result: dict[str, float] = json.loads(out.stdout)["light"]
    return result


def main() -> None:
    wrk = ensure_wrk()
    server_cpu, client_cpu = cpu_layout()
    workdir = Path(tempfile.mkdtemp(prefix="rnn-isolation-"))
    repository = workdir / "repo"
    for name in ("heavy", "light"):
        shutil.copytree(ROOT / "model_artifacts", repository / name / "1")
    light, heavy = bodies(workdir)
    port = free_port()
    env = {**os.environ, "MODEL_REPOSITORY": str(repository), "PORT": str(port), "THREADS": "1",
           "LOG_LEVEL": "warning", "MAX_QUEUE_MS": "0"}  # fmt: skip
    server = Server("ours", "ours", [sys.executable, "-m", "app"], env, port, workdir / "ours.log")
    load_start = loadavg()
    try:
        start_server(server, server_cpu)
        wait_ready(server, timeout=120)
        alone = probe(port, light, client_cpu)
        flood: dict[str, object] = {}
        flooding = threading.Thread(
            target=lambda: flood.update(
                summarize(run_wrk(wrk, port, heavy, 16, FLOOD_SECONDS, client_cpu), 32)
            )
        )
        flooding.start()
        flooded = probe(port, light, client_cpu)
        flooding.join()
    finally:
        stop_process_group(server.proc)
        shutil.rmtree(workdir, ignore_errors=True)
    lines = [
        "# One model flooded, another one asked",
        "",
        f"`python bench/isolation.py`: {os.cpu_count()} CPUs ({cpu_model()}); server on CPU "
        f"{server_cpu}, wrk and the probe on CPU {client_cpu}; load average {load_start} at "
        f"start, {loadavg()} at end. Both models are the bundled one.",
        "",
        "| light model, 1 text per request | p50 ms | p90 ms | p99 ms |",
        "|---|---:|---:|---:|",
        f"| alone | {alone['p50_ms']:.2f} | {alone['p90_ms']:.2f} | {alone['p99_ms']:.2f} |",
        f"| while the heavy model is flooded | {flooded['p50_ms']:.2f} | {flooded['p90_ms']:.2f} "
        f"| {flooded['p99_ms']:.2f} |",
        "",
        f"The flood: 32 texts per request to the heavy model at 16 connections, "
        f"{flood.get('texts_s', 0):,.0f} texts/s, p99 {flood.get('p99_ms', 0):.0f} ms, "
        f"{flood.get('errors', 0)} errors. Light model p99 flooded / alone: "
        f"**{flooded['p99_ms'] / alone['p99_ms']:.1f}x**.",
        "",
    ]
    (ROOT / "bench" / "isolation.md").write_text("\n".join(lines), encoding="utf-8")
    log("\n".join(lines))


if __name__ == "__main__":
    main()
