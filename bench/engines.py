#!/usr/bin/env python3
"""In-process engines on one core: ONNX Runtime (app.onnx_engine) vs torch eager (app.engine.TorchEngine).

Same model, same tokenized review texts, same batches, one intra-op thread each, this process
pinned to one CPU. Each round times every engine over the same batches, in alternating order, so
the drift of a shared machine hits both alike; the ratio is the median of the per-round ratios
of the calling thread's CPU time (wall time beside it).
Results go to bench/engines.md (see bench/README.md).

    python bench/engines.py                 # ~1 min
    python bench/engines.py --rounds 3      # quicker, noisier
"""

import argparse
import csv
import datetime as dt
import os
import platform
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from servers import BENCH, ROOT, code_version, cpu_model, loadavg, log, shown_path

from app.core.artifacts import load_artifacts
from app.engines.onnx_runtime import OnnxEngine
from app.engines.torch_eager import TorchEngine

BATCH_SIZES = (1, 8, 32, 64)
TEXTS_PER_ROUND = 512  # per engine and batch size: 512 calls at batch 1, 8 at batch 64
# Issue 7's targets: ONNX Runtime's speed-up over torch eager per text, by batch size.
TARGETS = {1: 4.0, 8: 2.5, 64: 1.0}

Predict = Callable[[list[list[int]]], np.ndarray]


@dataclass(frozen=True)
class Row:
    batch: int
    torch_us: float  # CPU time per text, median over rounds
    onnx_us: float
    speedup: float  # median of the per-round ratios of CPU time
    lowest: float
    highest: float
    wall_speedup: float  # median of the per-round ratios of wall time

    def markdown(self) -> str:
        target = TARGETS.get(self.batch)
        verdict = (
            f">= {target:g}x: {'met' if self.speedup >= target else 'MISSED'}" if target else ""
        )
        return (
            f"| {self.batch} | {self.torch_us:.0f} | {self.onnx_us:.0f} | "
            f"**{self.speedup:.2f}x** | {self.lowest:.2f}-{self.highest:.2f}x | "
            f"{self.wall_speedup:.2f}x | {verdict} |"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "model_artifacts")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", type=Path, default=BENCH / "engines.md")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def seconds_per_text(predict: Predict, batches: list[list[list[int]]]) -> tuple[float, float]:
    """(CPU, wall) seconds per text. With one intra-op thread both engines compute on this
    thread, so its CPU time is their work, without the waits other processes cause."""
    cpu, wall = time.thread_time(), time.perf_counter()
    for batch in batches:
        predict(batch)
    texts = sum(map(len, batches))
    return (time.thread_time() - cpu) / texts, (time.perf_counter() - wall) / texts


def main() -> None:
    args = parse_args()
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    artifacts = load_artifacts(args.model_dir)
    with (ROOT / "data" / "rotten_tomatoes.csv").open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["text"].strip()]
    sequences = [artifacts.tokenizer.encode(t, artifacts.max_length).ids for t in texts]
    engines: dict[str, Predict] = {
        "torch": TorchEngine(artifacts, "cpu", threads=1).predict,
        "onnx": OnnxEngine(artifacts.architecture, artifacts.weights, threads=1).predict,
    }
    rng = random.Random(args.seed)
    load_start = loadavg()
    rows = []
    for size in BATCH_SIZES:
        batches = [rng.sample(sequences, size) for _ in range(TEXTS_PER_ROUND // size)]
        np.testing.assert_allclose(  # the same answers, or the timing means nothing
            engines["onnx"](batches[0]), engines["torch"](batches[0]), atol=1e-5, rtol=0
        )
        for predict in engines.values():  # warm-up: one-off allocations and shape caches
            seconds_per_text(predict, batches[:4])
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
        for round_ in range(args.rounds):
            order = list(engines) if round_ % 2 == 0 else list(reversed(engines))
            for name in order:
                times[name].append(seconds_per_text(engines[name], batches))
        pairs = list(zip(times["torch"], times["onnx"], strict=True))
        ratios = [t[0] / o[0] for t, o in pairs]
        row = Row(
            size,
            statistics.median(t[0] for t in times["torch"]) * 1e6,
            statistics.median(o[0] for o in times["onnx"]) * 1e6,
            statistics.median(ratios),
            min(ratios),
            max(ratios),
            statistics.median(t[1] / o[1] for t, o in pairs),
        )
        rows.append(row)
        log(
            f"batch {size}: torch {row.torch_us:.0f} µs/text, onnx {row.onnx_us:.0f} µs/text, "
            f"onnx {row.speedup:.2f}x faster (wall time: {row.wall_speedup:.2f}x)"
        )
    write_report(args, artifacts.name, artifacts.version, rows, load_start, cpu)


def write_report(
    args: argparse.Namespace,
    name: str,
    version: str,
    rows: list[Row],
    load_start: str,
    cpu: int,
) -> None:
    lines = [
        "# In-process engines: ONNX Runtime vs torch eager",
        "",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{shlex.join(['python', *sys.argv])}`",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}; this process pinned to CPU {cpu}, one intra-op "
        "thread per engine",
        f"- Load average (1/5/15 min) at start: {load_start}; at end: {loadavg()}",
        f"- Code: {code_version()}",
        f"- Model: `{shown_path(args.model_dir)}` ({name} {version})",
        f"- Batches: review texts from data/rotten_tomatoes.csv, sampled at random (mixed "
        f"lengths); {TEXTS_PER_ROUND} texts per engine, batch size and round; {args.rounds} "
        "rounds, engines alternating which goes first",
        "",
        "torch = `app.engine.TorchEngine.predict` (collate, packed sequences, softmax); onnx = "
        "`app.onnx_engine.OnnxEngine.predict`. Times are the calling thread's CPU time per text "
        "(median over rounds; with one intra-op thread each engine computes on that thread, so "
        "other processes' load shows less than in wall time). The speed-up is the median of the "
        "per-round ratios, with its range over rounds; the wall-time speed-up beside it.",
        "",
        "| batch | torch µs/text | onnx µs/text | onnx speed-up | range over rounds "
        "| speed-up, wall time | target |",
        "|---:|---:|---:|---:|---|---:|---|",
    ]
    lines += [row.markdown() for row in rows]
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log(f"wrote {shown_path(args.output)}")


if __name__ == "__main__":
    main()
