#!/usr/bin/env python3
"""One epoch of our training on a data file, in a process of its own so that its peak RSS is its
own: bench/training_bench.py --large runs it on the large file and on the bundled reviews.

    python bench/training_large.py FILE [--limit N]   # prints one JSON line

It prepares the file as training does (split, vocabulary, ids, word vectors) and trains one epoch
of `training.fit.fit` with the default preset; texts/s is fit's own timing of the epoch, by the process's CPU time (--clock cpu) or the wall clock.
"""

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from servers import log, shown_path
from training_runs import CLOCKS, our_epoch

from training.config import PRESETS
from training.data import BUNDLED_DATA
from training.train import build_model, prepare

# Issue 30: a 1,000,000-text set trains one epoch within this.
RSS_BOUND_MIB = 1536


def peak_rss_kib() -> int:
    """This process's peak RSS since it started. Not ru_maxrss: across the vfork and exec that
    start it, that carries over the parent's peak (fastText's 800 MB of buckets, in the smoke)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def epoch_in_child(
    path: Path, columns: tuple[str, str], args: argparse.Namespace, limit: int | None
) -> dict[str, Any]:
    command = [sys.executable, __file__, str(path), "--seed", str(args.seed)]
    command += ["--clock", args.clock]
    command += ["--text-column", columns[0], "--label-column", columns[1]]
    command += [] if limit is None else ["--limit", str(limit)]
    log(f"one epoch on {shown_path(path)} in a process of its own")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the epoch on {path} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    log(
        f"{result['texts']} texts: {result['texts_per_s']:.0f} texts/s, "
        f"peak RSS {result['peak_rss_mib']:.0f} MiB"
    )
    return result


def large_section(
    path: Path, args: argparse.Namespace, small_limit: int | None, again: bool
) -> tuple[list[str], list[dict[str, Any]]]:
    """The markdown section and the children's results: the bundled reviews, the large file and
    (`again`) the bundled reviews once more, so drift over a long epoch shows."""
    bundled = ("text", "label")
    results = [
        epoch_in_child(BUNDLED_DATA, bundled, args, small_limit),
        epoch_in_child(path, (args.text_column, args.label_column), args, None),
    ]
    if again:
        results.append(epoch_in_child(BUNDLED_DATA, bundled, args, small_limit))
    small = statistics.median(r["texts_per_s"] for r in results[::2])
    names = ["bundled reviews", shown_path(path), "bundled reviews, again"]
    big = results[1]
    rows = [
        f"| {name} | {r['texts']} | {r['prepare_s']:.1f} | {r['texts_per_s']:.0f} | "
        f"{r['peak_rss_mib']:.0f} |"
        for name, r in zip(names, results, strict=False)
    ]
    within = "within" if big["peak_rss_mib"] <= RSS_BOUND_MIB else "OVER"
    lines = [
        "",
        "## One epoch on a large set against the bundled one",
        "",
        "Each epoch in a process of its own (`bench/training_large.py`): the file prepared as "
        "training does (split, vocabulary, ids, vectors), then one epoch of `training.fit.fit`; "
        "peak RSS is the process's (`VmHWM`), texts/s fit's own.",
        "",
        f"| data | training texts | prepare {'CPU s' if args.clock == 'cpu' else 's'} | texts/s "
        "| peak RSS MiB |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"Large / bundled texts/s: **{big['texts_per_s'] / small:.3f}x**; peak RSS "
        f"{big['peak_rss_mib']:.0f} MiB against the {RSS_BOUND_MIB} MiB bound: **{within}**.",
    ]
    return lines, results


def smoke_file(directory: Path, rows: int) -> Path:
    """The first bundled rows, standing in for a large file in CI."""
    with BUNDLED_DATA.open(newline="", encoding="utf-8") as f:
        head = list(csv.reader(f))[: rows + 1]
    path = directory / "large-smoke.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(head)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--limit", type=int, help="only the first N examples")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)  # as training.train runs
    config = replace(PRESETS["default"], epochs=1)
    started = clock()
    prepared = prepare(args.data, args.text_column, args.label_column, args.limit, config)
    prepare_s = clock() - started
    texts_per_s = our_epoch(build_model(prepared, config), prepared, config, args.seed, clock)
    result = {
        "texts": len(prepared.encoded["train"]),
        "prepare_s": prepare_s,
        "texts_per_s": texts_per_s,
        "peak_rss_mib": peak_rss_kib() / 1024,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
