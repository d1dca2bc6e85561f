#!/usr/bin/env python3
"""What the n-gram branch costs to serve: the ONNX engine on the bundled model, with and without a
branch of N pair buckets, on one core.

The branch's scores are random (what it costs does not depend on what it learned). Same texts,
same batches, one intra-op thread, this process pinned to one CPU, the two alternating which goes
first each round; the ratio is the median of the per-round ratios of the calling thread's CPU
time. Results go to bench/ngram-cost.md.

    python bench/ngram_cost.py                     # 2^17 buckets, ~1 min
    python bench/ngram_cost.py --buckets 262144
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
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime
from engines import seconds_per_text
from servers import BENCH, ROOT, code_version, cpu_model, loadavg, log, shown_path, write_results

from app.core.artifacts import load_artifacts
from app.core.ngrams import HASHING
from app.engines.onnx_runtime import OnnxEngine

BATCH_SIZES = (1, 8, 64)
TEXTS_PER_ROUND = 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "model_artifacts")
    parser.add_argument("--buckets", type=int, default=2**17)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", type=Path, default=BENCH / "ngram-cost.md")
    args = parser.parse_args()
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    artifacts = load_artifacts(args.model_dir)
    plain_config = artifacts.architecture
    config = replace(plain_config, ngram_buckets=args.buckets, ngram_hashing=HASHING)
    rng = np.random.default_rng(0)
    weights = {
        **artifacts.weights,
        "ngrams.words": rng.normal(size=(config.vocab_size, config.num_classes)),
        "ngrams.pairs": rng.normal(size=(config.ngram_buckets, config.num_classes)),
    }
    weights = {name: np.asarray(t, np.float32) for name, t in weights.items()}
    engines = {
        "plain": OnnxEngine(plain_config, artifacts.weights, threads=1).predict,
        "branch": OnnxEngine(config, weights, threads=1).predict,
    }
    with (ROOT / "data" / "rotten_tomatoes.csv").open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["text"].strip()]
    sequences = [artifacts.tokenizer.encode(t, artifacts.max_length).ids for t in texts]
    sample = random.Random(0)
    load_start = loadavg()
    rows = []
    for size in BATCH_SIZES:
        batches = [sample.sample(sequences, size) for _ in range(TEXTS_PER_ROUND // size)]
        for predict in engines.values():
            seconds_per_text(predict, batches[:4])
        times: dict[str, list[float]] = {name: [] for name in engines}
        for round_ in range(args.rounds):
            for name in list(engines) if round_ % 2 == 0 else list(reversed(engines)):
                times[name].append(seconds_per_text(engines[name], batches)[0])
        ratios = [b / p for b, p in zip(times["branch"], times["plain"], strict=True)]
        plain_us, branch_us = (statistics.median(times[n]) * 1e6 for n in ("plain", "branch"))
        ratio = statistics.median(ratios)
        rows.append(
            f"| {size} | {plain_us:.0f} | {branch_us:.0f} | **{ratio:.3f}x** | "
            f"{min(ratios):.3f}-{max(ratios):.3f}x |"
        )
        log(f"batch {size}: plain {plain_us:.0f} µs/text, branch {branch_us:.0f}, {ratio:.3f}x")
    size_mb = sum(t.nbytes for t in weights.values()) / 1e6
    lines = [
        "# The n-gram branch's serving cost: ONNX Runtime, with and without the branch",
        "",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{shlex.join(['python', *sys.argv])}`",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}; pinned to "
        f"CPU {cpu}, one intra-op thread",
        f"- Load average (1/5/15 min) at start: {load_start}; at end: {loadavg()}",
        f"- Code: {code_version()}",
        f"- Model: `{shown_path(args.model_dir)}` ({artifacts.name} {artifacts.version}); the "
        f"branch: {args.buckets} pair buckets, weights {size_mb:.2f} MB in all",
        f"- {TEXTS_PER_ROUND} review texts per batch size and round, {args.rounds} rounds",
        "",
        "| batch | plain µs/text | with the branch µs/text | cost ratio | range over rounds |",
        "|---:|---:|---:|---:|---|",
        *rows,
    ]
    write_results(args.output, lines)


if __name__ == "__main__":
    main()
