"""What a served model costs against another: the ONNX engine on two trained models (today's
bundled model, and one with the n-gram branch or a smaller RNN), on one core.

Same texts, each model's own vocabulary, same batches, one intra-op thread, this process pinned to
one CPU, the two alternating which goes first each round; the ratio is the median of the
per-round ratios of the calling thread's CPU time. Results go to bench/ngram-cost.md.

    python bench/ngram_cost.py --candidate DIR                  # against model_artifacts, ~1 min
    python bench/ngram_cost.py --baseline PLAIN --candidate DIR
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
from pathlib import Path

import onnxruntime
from engines import seconds_per_text
from servers import BENCH, ROOT, code_version, cpu_model, loadavg, log, shown_path, write_results

from app.core.artifacts import Artifacts, load_artifacts
from app.engines.onnx_runtime import OnnxEngine

BATCH_SIZES = (1, 8, 64)
TEXTS_PER_ROUND = 512


def described(path: Path, artifacts: Artifacts) -> str:
    a = artifacts.architecture
    size_mb = sum(t.nbytes for t in artifacts.weights.values()) / 1e6
    return (
        f"`{shown_path(path)}` ({artifacts.name} {artifacts.version}: {a.rnn_type} "
        f"{a.hidden_dim}{' x 2' if a.bidirectional else ''}, n-gram buckets {a.ngram_buckets}, "
        f"weights {size_mb:.2f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=ROOT / "model_artifacts")
    parser.add_argument("--candidate", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", type=Path, default=BENCH / "ngram-cost.md")
    args = parser.parse_args()
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    models = {
        "baseline": load_artifacts(args.baseline),
        "candidate": load_artifacts(args.candidate),
    }
    engines = {
        name: OnnxEngine(a.architecture, a.weights, threads=1).predict for name, a in models.items()
    }
    with (ROOT / "data" / "rotten_tomatoes.csv").open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["text"].strip()]
    sequences = {
        name: [a.tokenizer.encode(t, a.max_length).ids for t in texts] for name, a in models.items()
    }
    sample = random.Random(0)
    load_start = loadavg()
    rows = []
    for size in BATCH_SIZES:
        picks = [sample.sample(range(len(texts)), size) for _ in range(TEXTS_PER_ROUND // size)]
        batches = {name: [[seqs[i] for i in p] for p in picks] for name, seqs in sequences.items()}
        for name, predict in engines.items():
            seconds_per_text(predict, batches[name][:4])
        times: dict[str, list[float]] = {name: [] for name in engines}
        for round_ in range(args.rounds):
            for name in list(engines) if round_ % 2 == 0 else list(reversed(engines)):
                times[name].append(seconds_per_text(engines[name], batches[name])[0])
        ratios = [c / b for c, b in zip(times["candidate"], times["baseline"], strict=True)]
        base_us, cand_us = (statistics.median(times[n]) * 1e6 for n in ("baseline", "candidate"))
        ratio = statistics.median(ratios)
        rows.append(
            f"| {size} | {base_us:.0f} | {cand_us:.0f} | **{ratio:.3f}x** | "
            f"{min(ratios):.3f}-{max(ratios):.3f}x |"
        )
        log(f"batch {size}: baseline {base_us:.0f} µs/text, candidate {cand_us:.0f}, {ratio:.3f}x")
    lines = [
        "# Serving cost of a candidate model against the baseline: ONNX Runtime, one core",
        "",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{shlex.join(['python', *sys.argv])}`",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}; pinned to "
        f"CPU {cpu}, one intra-op thread",
        f"- Load average (1/5/15 min) at start: {load_start}; at end: {loadavg()}",
        f"- Code: {code_version()}",
        f"- Baseline: {described(args.baseline, models['baseline'])}",
        f"- Candidate: {described(args.candidate, models['candidate'])}",
        f"- {TEXTS_PER_ROUND} review texts per batch size and round, {args.rounds} rounds",
        "",
        "| batch | baseline µs/text | candidate µs/text | cost ratio | range over rounds |",
        "|---:|---:|---:|---:|---|",
        *rows,
    ]
    write_results(args.output, lines)


if __name__ == "__main__":
    main()
