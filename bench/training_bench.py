#!/usr/bin/env python3
"""Training speed: our training against the minimal PyTorch loop of the same network, and time to
accuracy against fastText and the TF-IDF baseline, on the bundled reviews' split.

One process, pinned to one CPU, torch on one thread, timed by the process's CPU time (--clock
wall for the wall clock). Throughput: one warm-up epoch of each (discarded), then rounds of one
epoch of ours and one of the minimal loop, alternating which goes first; the ratio is the median
of the per-round ratios. Time to accuracy: each method trained once from the split texts; ours
scored on test after every epoch (off the clock).
Results go to bench/training.md (--large: bench/training-large.md; see bench/README.md).

    python bench/training_bench.py                  # ~15 min on an idle core (ours: up to 50 epochs)
    python bench/training_bench.py --epochs 10      # ours capped at 10 epochs
    python bench/training_bench.py --large big.csv  # one epoch on big.csv beside the bundled set
    python bench/training_bench.py --smoke          # CI: a few hundred texts, < 1 min, no speed asserted
"""

import argparse
import datetime as dt
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from servers import BENCH, ROOT, cpu_model, loadavg, log, write_results
from training_large import large_section, smoke_file
from training_runs import (
    CLOCKS,
    FASTTEXT,
    Clock,
    MinimalLoop,
    Outcome,
    fasttext_training,
    our_epoch,
    our_training,
    tfidf_training,
)

from training.config import PRESETS, TrainConfig, with_data
from training.data import BUNDLED_DATA
from training.train import Prepared, build_model, prepare

SMOKE_TEXTS = 400
# Issue 30: our epoch at least this many times the minimal loop's texts/s.
TARGET_RATIO = 1.5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny and quick, for CI")
    parser.add_argument("--rounds", type=int, help="throughput rounds (default 5, smoke 1)")
    parser.add_argument(
        "--epochs", type=int, help="most epochs of our full training (default: the preset's)"
    )
    parser.add_argument("--target", type=float, default=0.77, help="the test accuracy timed to")
    parser.add_argument(
        "--large", type=Path, help="CSV/JSONL: one epoch on it against the bundled set"
    )
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: the process's CPU time, which other processes' work does not inflate (default)",
    )
    parser.add_argument("--output", type=Path, help="default bench/training.md (--large: "
                        "training-large.md, smoke: training.smoke.md)")  # fmt: skip
    return parser.parse_args()


def code_version() -> str:
    """The commit, and whether the training code differs from it: it is measured as the tree is."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = git("status", "--porcelain", "--", "training", "app").splitlines()
    return f"commit {commit}" + (
        f" + uncommitted changes in {len(changed)} file(s)" if changed else ""
    )


def seconds(clock: str) -> str:
    return "CPU s" if clock == "cpu" else "wall s"


def header(
    title: str, cpu: int, clock: str, load_start: str, prepared: Prepared | None
) -> list[str]:
    lines = [
        f"# {title}",
        "",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{shlex.join(['python', *sys.argv])}`",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}; pinned to CPU {cpu}, one torch "
        f"thread; timed in {seconds(clock)} (`--clock {clock}`): texts/s are texts per "
        + ("CPU-second" if clock == "cpu" else "second"),
        f"- Load average (1/5/15 min) at start: {load_start}; at end: {loadavg()}",
        f"- Code: {code_version()}",
    ]
    if prepared is not None:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in prepared.splits.items())
        lines.append(
            f"- Data: the bundled reviews' hash split ({sizes}), vocabulary {len(prepared.tokenizer)}"
        )
    return lines


def throughput(
    prepared: Prepared, config: TrainConfig, rounds: int, seed: int, clock: Clock
) -> tuple[list[str], float]:
    ours = build_model(prepared, config)
    shape = with_data(config.model, len(prepared.tokenizer), len(prepared.labels))
    minimal = MinimalLoop.for_preset(shape, config, seed, clock)
    train = prepared.encoded["train"]
    runs: dict[str, Callable[[int], float]] = {
        "ours": lambda r: our_epoch(ours, prepared, config, seed + r, clock),
        "minimal": lambda r: minimal.epoch(train),
    }
    for name, run in runs.items():
        log(f"warm-up epoch, {name}: {run(-1):.0f} texts/s (discarded)")
    speeds: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(rounds):
        for name in list(runs) if round_ % 2 == 0 else list(reversed(runs)):
            speeds[name].append(runs[name](round_))
        ours_now, minimal_now = speeds["ours"][-1], speeds["minimal"][-1]
        log(f"round {round_ + 1}: ours {ours_now:.0f} texts/s, minimal {minimal_now:.0f}")
    ratios = [o / m for o, m in zip(speeds["ours"], speeds["minimal"], strict=True)]
    ratio = statistics.median(ratios)
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    lines = [
        "",
        "## Throughput: our epoch against the minimal loop",
        "",
        f"Ours: `training.fit.fit`, one epoch per round, the default preset (GloVe-mapped "
        f"{config.model.embedding_dim}-d embedding, {config.model.rnn_type.upper()} "
        f"{config.model.hidden_dim} x {shape.directions}, max+mean pooling, dropout "
        f"{config.model.dropout}, word dropout {config.word_dropout}, weight average "
        f"{config.ema_decay}, clipping, batch {config.batch_size}"
        f"{' of similar length' if config.length_batches else ''}, Adam {config.lr:g}); texts/s as "
        "fit times its training pass (the epoch table's Texts/s). Minimal: the same shape with a plain "
        "embedding, no dropout, plain Adam at the same rate, shuffled batches of "
        f"{config.batch_size}, nothing else. Training split, {len(train)} texts per epoch.",
        "",
        "| round | ours texts/s | minimal texts/s | ours / minimal |",
        "|---:|---:|---:|---:|",
        *(
            f"| {i + 1} | {o:.0f} | {m:.0f} | {o / m:.3f}x |"
            for i, (o, m) in enumerate(zip(speeds["ours"], speeds["minimal"], strict=True))
        ),
        f"| **median** | **{statistics.median(speeds['ours']):.0f}** | "
        f"**{statistics.median(speeds['minimal']):.0f}** | **{ratio:.3f}x** |",
        "",
        f"Target ours / minimal >= {TARGET_RATIO}x: **{verdict}** (range over rounds "
        f"{min(ratios):.3f}-{max(ratios):.3f}x).",
    ]
    return lines, ratio


def time_to_accuracy(
    prepared: Prepared,
    config: TrainConfig,
    prepare_s: float,
    args: argparse.Namespace,
    fasttext_params: dict[str, Any],
) -> tuple[list[str], list[Outcome]]:
    clock, unit = CLOCKS[args.clock], seconds(args.clock)
    log(f"our full training (up to {config.epochs} epochs)")
    ours, points = our_training(prepared, config, args.seed, args.target, prepare_s, clock)
    fast = fasttext_training(prepared.splits, fasttext_params, args.target, clock)
    tfidf = tfidf_training(prepared, args.target, clock)
    outcomes = [ours, fast, tfidf]
    for outcome in outcomes:
        log(f"{outcome.method}: {outcome.train_s:.1f} {unit}, test {outcome.test_accuracy:.4f}")
    curve = ", ".join(f"{s:.0f} s {a:.3f}" for s, a in points)
    lines = [
        "",
        f"## Time to accuracy (target: test accuracy {args.target})",
        "",
        f"{unit[0].upper()}{unit[1:]}: from the split texts to a trained model, on the same core. Ours includes preparing "
        f"(vocabulary, ids, GloVe vectors: {prepare_s:.1f} s) and its per-epoch validation; fastText "
        "writes its file (our tokenizer's words) and trains with thread=1; the baseline fits its "
        "TF-IDF and one logistic regression per C. Ours is scored on test after every epoch (the "
        "model fit would return if it stopped there), off the clock; the others reach their "
        "accuracy when they finish.",
        "",
        f"| method | train {unit} | test accuracy | {unit} to {args.target} |",
        "|---|---:|---:|---:|",
        *(
            f"| {o.method} | {o.train_s:.1f} | {o.test_accuracy:.4f} | "
            + ("not reached" if o.reached_s is None else f"{o.reached_s:.1f}")
            + " |"
            for o in outcomes
        ),
        "",
        f"Ours, test accuracy after each epoch ({unit} of training, accuracy): {curve}.",
    ]
    return lines, outcomes


def check_numbers(outcomes: list[Outcome], values: list[float]) -> None:
    """The smoke's only check: every part ran and gave numbers (no speed is asserted)."""
    accuracies = [o.test_accuracy for o in outcomes]
    assert all(0.0 <= a <= 1.0 for a in accuracies), accuracies
    assert all(math.isfinite(v) and v > 0 for v in values), values


def main() -> None:
    args = parse_args()
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)  # as training.train runs
    config = PRESETS["default"]
    if args.epochs:
        config = replace(config, epochs=args.epochs)
    if args.smoke:
        config = replace(config, epochs=1)
    clock = CLOCKS[args.clock]
    load_start = loadavg()
    limit = SMOKE_TEXTS if args.smoke else None
    lines: list[str] = []
    if args.large is not None:
        section, _ = large_section(args.large, args, limit, again=not args.smoke)
        output = args.output or BENCH / "training-large.md"
        title = "Training: one epoch on a large set"
        write_results(output, header(title, cpu, args.clock, load_start, None) + section)
        return
    started = clock()
    prepared = prepare(BUNDLED_DATA, "text", "label", limit, config)
    prepare_s = clock() - started
    rounds = args.rounds or (1 if args.smoke else 5)
    section, ratio = throughput(prepared, config, rounds, args.seed, clock)
    lines += section
    fasttext_params = {**FASTTEXT, "epoch": 1} if args.smoke else FASTTEXT
    section, outcomes = time_to_accuracy(prepared, config, prepare_s, args, fasttext_params)
    lines += section
    values = [ratio, *(o.train_s for o in outcomes)]
    if args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            section, results = large_section(
                smoke_file(Path(tmp), SMOKE_TEXTS // 2), args, limit, again=False
            )
        lines += section
        values += [v for r in results for v in (r["texts_per_s"], r["peak_rss_mib"])]
        check_numbers(outcomes, values)
    output = args.output or BENCH / ("training.smoke.md" if args.smoke else "training.md")
    title = "Training speed: ours, the minimal loop, fastText, TF-IDF"
    write_results(output, header(title, cpu, args.clock, load_start, prepared) + lines)


if __name__ == "__main__":
    main()
