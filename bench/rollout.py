#!/usr/bin/env python3
"""What a shadow costs the live version: our service on one core under wrk (64 connections, one
review per request), serving the bundled model alone, with a copy of it as its shadow, and with a
shadow too slow to keep up (the bundled architecture at 8x the hidden size, random weights), so
its queue is full and it sheds.

Each configuration is a fresh server on the same core, in rounds that alternate the order; the
ratios are the medians of the per-round ratios to the bundled model alone. The shadow's figures
(texts compared and dropped) come from GET /models. Results go to bench/rollout.md.

    python bench/rollout.py                    # 3 rounds of 15 s each, ~4 min
    python bench/rollout.py --rounds 1 --seconds 5
"""

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from loadgen import run_wrk, summarize
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

from app.core.artifacts import load_artifacts, save_artifacts
from app.core.network import RNNClassifier, numpy_weights
from training.serving_checks import known_answers

CONFIGURATIONS = {
    "alone": "the bundled model alone",
    "shadow": "with a copy of it as its shadow",
    "slow_shadow": "with a shadow 8x its hidden size (falls behind: its queue is full)",
}


def slow_model(directory: Path) -> None:
    """The bundled model's shape with 8x the hidden size and random weights: valid artifacts
    (known answers included) that score far slower than the live version."""
    bundled = load_artifacts(ROOT / "model_artifacts")
    torch.manual_seed(0)
    config = replace(bundled.architecture, hidden_dim=bundled.architecture.hidden_dim * 8)
    model = RNNClassifier(config).eval()
    texts = ["a gripping , beautifully acted film", "dull"]
    known = known_answers(model, bundled.tokenizer, texts, bundled.max_length)
    save_artifacts(
        directory,
        config,
        numpy_weights(model),
        bundled.tokenizer,
        bundled.labels,
        bundled.max_length,
        name=bundled.name,
        version="slow",
        extra={},
        known_answers=known,
    )


def repository(workdir: Path, configuration: str) -> Path:
    root = workdir / configuration
    model = root / "reviews"
    shutil.copytree(ROOT / "model_artifacts", model / "1")
    if configuration == "shadow":
        shutil.copytree(ROOT / "model_artifacts", model / "2")
    elif configuration == "slow_shadow":
        slow_model(model / "2")
    if configuration != "alone":
        setting = {"version_policy": {"all": {}}, "rollout": {"shadow": "2"}}
        (model / "model.json").write_text(json.dumps(setting))
    return root


def bodies(workdir: Path) -> Path:
    with (ROOT / "data" / "rotten_tomatoes.csv").open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["text"].strip()]
    random.Random(0).shuffle(texts)
    path = workdir / "bodies_1.jsonl"
    path.write_text("".join(json.dumps({"texts": [t]}) + "\n" for t in texts[:2000]))
    return path


def shadow_figures(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/models", timeout=10) as response:
        (model,) = json.loads(response.read())["models"]
    rollout = model["rollout"] or {}
    return rollout.get("shadow") or {}


def measure(
    workdir: Path,
    configuration: str,
    wrk: str,
    body_file: Path,
    seconds: int,
    cpus: tuple[int, int],
) -> dict[str, Any]:
    server_cpu, client_cpu = cpus
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env |= {"MODEL_REPOSITORY": str(repository(workdir / "repos", configuration))}
    env |= {"HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "1", "THREADS": "1"}
    env |= {"LOG_LEVEL": "warning"}
    server = Server(
        configuration,
        CONFIGURATIONS[configuration],
        [sys.executable, "-m", "app"],
        env,
        port,
        workdir / f"{configuration}.log",
    )
    start_server(server, server_cpu)
    try:
        wait_ready(server, 120)
        run_wrk(wrk, port, body_file, 64, 3, client_cpu)  # warm-up
        result = summarize(run_wrk(wrk, port, body_file, 64, seconds, client_cpu), 1)
        result["shadow"] = shadow_figures(port)
    finally:
        stop_process_group(server.proc)
        shutil.rmtree(workdir / "repos" / configuration, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--output", type=Path, default=BENCH / "rollout.md")
    args = parser.parse_args()
    wrk = ensure_wrk()
    cpus = cpu_layout()
    load_start = loadavg()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGURATIONS}
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        workdir = Path(tmp)
        body_file = bodies(workdir)
        for round_ in range(args.rounds):
            order = list(CONFIGURATIONS) if round_ % 2 == 0 else list(reversed(CONFIGURATIONS))
            for name in order:
                result = measure(workdir, name, wrk, body_file, args.seconds, cpus)
                runs[name].append(result)
                log(
                    f"round {round_ + 1} {name}: {result['req_s']:.0f} req/s, p99 "
                    f"{result['p99_ms']:.1f} ms, errors {result['errors']}, shadow "
                    f"{result['shadow']}"
                )
    write_report(args, runs, cpus, load_start)


def write_report(
    args: argparse.Namespace,
    runs: dict[str, list[dict[str, Any]]],
    cpus: tuple[int, int],
    load_start: str,
) -> None:
    alone = runs["alone"]
    rows = []
    for name, results in runs.items():
        throughput = statistics.median(
            r["req_s"] / a["req_s"] for r, a in zip(results, alone, strict=True)
        )
        p99 = statistics.median(
            r["p99_ms"] / a["p99_ms"] for r, a in zip(results, alone, strict=True)
        )
        compared = sum(r["shadow"].get("texts_compared", 0) for r in results)
        dropped = sum(r["shadow"].get("texts_dropped", 0) for r in results)
        rows.append(
            f"| {CONFIGURATIONS[name]} | {statistics.median(r['req_s'] for r in results):.0f} | "
            f"**{throughput:.2f}x** | {statistics.median(r['p99_ms'] for r in results):.1f} | "
            f"{p99:.2f}x | {sum(r['errors'] for r in results)} | "
            + (f"{compared} / {dropped} |" if name != "alone" else "- |")
        )
    lines = [
        "# What a shadow costs the live version",
        "",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{shlex.join(['python', *sys.argv])}`",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}; server pinned to CPU {cpus[0]} (WORKERS=1, "
        f"THREADS=1), wrk on CPU {cpus[1]}",
        f"- Load average (1/5/15 min) at start: {load_start}; at end: {loadavg()}",
        f"- Code: {code_version()}",
        f"- Load: wrk, 64 connections, one review per request, {args.seconds} s after a 3 s "
        f"warm-up, {args.rounds} rounds alternating the order, a fresh server each time",
        "",
        "Ratios are medians of the per-round ratios to the bundled model alone. Texts compared / "
        "dropped: the shadow's, summed over the rounds (the live version's requests it scored, "
        "and the ones it shed because it was behind).",
        "",
        "| configuration | req/s | throughput vs alone | p99 ms | p99 vs alone | errors "
        "| texts compared / dropped |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    write_results(args.output, lines)


if __name__ == "__main__":
    main()
