#!/usr/bin/env python3
"""Side-by-side benchmark: our service vs a no-op FastAPI (the HTTP ceiling), a naive FastAPI, LitServe.

Every server runs on one core (taskset), in its own session (setsid) so that the kernel's
autogroup scheduling keeps it apart from other work; wrk and the latency probe run on another core.
Results go to bench/results.md (and .json next to it); see bench/README.md.
This file holds the request bodies, our batcher's metrics and the run itself; beside it are
servers.py (environment, starting and stopping the servers), loadgen.py (scenarios, wrk, the
latency probe), profiling.py (py-spy) and report.py (results.md, the targets).

    python bench/run.py              # full run: ~2 s warm-up + 8 s per scenario and server
    python bench/run.py --smoke      # CI: ~1 s per scenario, asserts nothing about speed
    python bench/run.py --profile    # also py-spy our service under 64 connections
"""

import argparse
import csv
import datetime as dt
import http.client
import json
import os
import platform
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Siblings in bench/: run as a script, this file's directory is first on sys.path.
from loadgen import SCENARIOS, run_probe, run_wrk, summarize
from profiling import profile_ours
from report import check_targets, ratio, render
from servers import (
    BENCH,
    ROOT,
    Server,
    check_answer,
    children,
    code_version,
    cpu_layout,
    cpu_model,
    ensure_wrk,
    litserve_installed,
    loadavg,
    log,
    log_tail,
    make_servers,
    rss_kib,
    shown_path,
    start_server,
    stop_process_group,
    wait_ready,
)
from serving_cost import STARTS, start_up_and_memory, two_workers

DATA = ROOT / "data" / "rotten_tomatoes.csv"


# ---------------------------------------------------------------- request bodies


def write_bodies(directory: Path, seed: int) -> tuple[Path, Path, dict[str, Any]]:
    """Mixed real review texts: one text per body, and 32 texts per body, one JSON per line."""
    with DATA.open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["text"].strip()]
    rng = random.Random(seed)
    rng.shuffle(texts)
    singles = texts[:2000]
    one = directory / "bodies_1.jsonl"
    one.write_text("".join(json.dumps({"texts": [t]}) + "\n" for t in singles))
    many = directory / "bodies_32.jsonl"
    many.write_text(
        "".join(json.dumps({"texts": rng.sample(texts, 32)}) + "\n" for _ in range(256))
    )
    words = sorted(len(t.split()) for t in singles)
    stats = {
        "texts": len(texts),
        "words_min": words[0],
        "words_median": statistics.median(words),
        "words_p90": words[int(0.9 * (len(words) - 1))],
        "words_max": words[-1],
    }
    return one, many, stats


# ---------------------------------------------------------------- our batcher's own metrics

_BATCHER_SERIES = (
    "rnn_classifier_batch_size_sum",
    "rnn_classifier_batch_size_count",
    "rnn_classifier_inference_duration_seconds_sum",
    "rnn_classifier_queue_duration_seconds_sum",
    "rnn_classifier_queue_duration_seconds_count",
    "rnn_classifier_request_duration_seconds_sum",
    "rnn_classifier_request_duration_seconds_count",
    "rnn_classifier_tokens_total",
    "rnn_classifier_padded_tokens_total",
)


def batcher_metrics(server: Server) -> dict[str, float]:
    """Our service's /metrics histograms (sums and counts), to see how it spent the run."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    values: dict[str, float] = {}
    for line in text.splitlines():
        series, _, value = line.partition(" ")
        name, _, labels = series.partition("{")
        # The batcher's series are labelled by model version (the bench serves one); request
        # latency by route and status: /classify's, every status.
        by_version = 'version="' in labels and "path=" not in labels
        if name in _BATCHER_SERIES and (by_version or 'path="/classify"' in labels):
            values[name] = values.get(name, 0.0) + float(value)
    return values


def batcher_delta(
    before: dict[str, float], after: dict[str, float], result: dict[str, Any]
) -> dict[str, Any]:
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in _BATCHER_SERIES}
    batches = d["rnn_classifier_batch_size_count"]
    texts = d["rnn_classifier_batch_size_sum"]
    requests = d["rnn_classifier_request_duration_seconds_count"]
    # The scrape brackets wrk's run, so these include a little idle time around it.
    out = {
        "batches": int(batches),
        "mean_batch": texts / batches if batches else 0.0,
        "forward_ms": d["rnn_classifier_inference_duration_seconds_sum"] / batches * 1e3
        if batches
        else 0.0,
        "forward_share": d["rnn_classifier_inference_duration_seconds_sum"] / result["seconds"],
        "queue_ms": d["rnn_classifier_queue_duration_seconds_sum"]
        / max(1.0, d["rnn_classifier_queue_duration_seconds_count"])
        * 1e3,
        "handler_ms": d["rnn_classifier_request_duration_seconds_sum"] / requests * 1e3
        if requests
        else 0.0,
        "padded_per_real": d["rnn_classifier_padded_tokens_total"]
        / max(1.0, d["rnn_classifier_tokens_total"]),
    }
    out["text"] = (
        f"{out['batches']} batches of {out['mean_batch']:.1f} texts on average, "
        f"{out['forward_ms']:.2f} ms per forward pass ({out['forward_share'] * 100:.0f}% of "
        f"the run), {out['padded_per_real']:.2f} padded steps per real token, "
        f"{out['queue_ms']:.2f} ms mean queue wait, {out['handler_ms']:.2f} ms mean handler time"
    )
    return out


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="~1 s per scenario, for CI")
    parser.add_argument("--duration", type=int, help="seconds per scenario (default 8, smoke 1)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds (default 2, smoke 1)")
    parser.add_argument("--model-dir", type=Path, help="default model_artifacts, else runs/seed")
    parser.add_argument("--output", type=Path, help="default bench/results.md (smoke: "
                        "bench/results.smoke.md)")  # fmt: skip
    parser.add_argument("--probe-requests", type=int, help="sequential requests per server "
                        "for the client-timed 1-connection latency (default 3000, smoke 300)")  # fmt: skip
    parser.add_argument("--access-log", action="store_true", help="uvicorn access log on")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy our service under 1 text/request at 64 connections")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="shuffle of the request texts")
    return parser.parse_args()


def default_model_dir() -> Path:
    if (ROOT / "model_artifacts" / "config.json").is_file():
        return Path("model_artifacts")
    log("model_artifacts/config.json missing: using runs/seed")
    return Path("runs/seed")


def main() -> None:
    args = parse_args()
    duration = args.duration or (1 if args.smoke else 8)
    warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 2)
    probe_requests = args.probe_requests or (300 if args.smoke else 3000)
    output = args.output or BENCH / ("results.smoke.md" if args.smoke else "results.md")
    model_dir = args.model_dir or default_model_dir()
    if not ((ROOT / model_dir) / "config.json").is_file():
        sys.exit(f"no trained model in {model_dir} (config.json missing)")

    # Ctrl-C raises KeyboardInterrupt; make SIGTERM/SIGHUP unwind through `finally` too.
    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    # Started in the background by a non-interactive shell, SIGINT arrives ignored: restore it.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    wrk = ensure_wrk()
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split(" [")[0]
    server_cpu, client_cpu = cpu_layout()
    os.sched_setaffinity(0, {client_cpu})  # this script's own work stays off the servers' core
    started = time.monotonic()
    load_start = loadavg()
    code = code_version()
    workdir = Path(tempfile.mkdtemp(prefix="rnn-bench-"))
    bodies_1, bodies_32, body_stats = write_bodies(workdir, args.seed)
    with_litserve = litserve_installed()
    if not with_litserve:
        if not args.smoke:
            sys.exit("LitServe is missing: pip install -e '.[bench]' (a bench-only extra)")
        log("LitServe not installed (pip install -e '.[bench]'): smoke run without it")
    servers = make_servers(model_dir, workdir, args.access_log, with_litserve)
    by_key = {s.key: s for s in servers}
    bodies = {1: bodies_1, 32: bodies_32}
    first_body = {n: path.read_bytes().splitlines()[0] for n, path in bodies.items()}
    report: dict[str, Any] = {"results": {s.key: {} for s in SCENARIOS}}
    keep_logs = False
    try:
        log(f"model {model_dir}; servers on CPU {server_cpu}, load on CPU {client_cpu}; "
            f"logs in {workdir}")  # fmt: skip
        starts = 1 if args.smoke else STARTS
        report["serving_cost"] = {
            key: start_up_and_memory(by_key[key], server_cpu, first_body[1], starts)
            for key in ("noop", "ours")
        }
        for server in servers:
            start_server(server, server_cpu)
        for server in servers:
            wait_ready(server, timeout=180)
            for n in (1, 32):
                check_answer(server, first_body[n], n)
            log(f"{server.key} ready on port {server.port} (pid {server.proc.pid})")  # type: ignore[union-attr]

        for server in servers:  # warm-up: both body shapes, then the RSS baseline
            run_wrk(wrk, server.port, bodies[1], 64, warmup, client_cpu)
            run_wrk(wrk, server.port, bodies[32], 4, warmup, client_cpu)
            server.rss_warm_kib = rss_kib(server.proc.pid)  # type: ignore[union-attr]
        log(
            "warm-up done: RSS "
            + ", ".join(f"{s.key} {s.rss_warm_kib // 1024} MiB" for s in servers)
        )

        for turn, scenario in enumerate(SCENARIOS):
            # Rotate who goes first, so slow drift of a shared machine does not favour one server.
            first = turn % len(servers)
            for server in servers[first:] + servers[:first]:
                if not args.smoke:
                    run_wrk(wrk, server.port, bodies[scenario.texts], scenario.connections,
                            warmup, client_cpu)  # fmt: skip
                before = batcher_metrics(server) if server.key == "ours" else None
                raw = run_wrk(wrk, server.port, bodies[scenario.texts], scenario.connections,
                              duration, client_cpu)  # fmt: skip
                result = summarize(raw, scenario.texts)
                if before is not None:
                    result["batcher"] = batcher_delta(before, batcher_metrics(server), result)
                    log(f"  ours batcher: {result['batcher']['text']}")
                report["results"][scenario.key][server.key] = result
                log(f"{scenario.title:34} {server.key:8}: {result['req_s']:8,.0f} req/s "
                    f"{result['texts_s']:9,.0f} texts/s  p50 {result['p50_ms']:6.2f} ms  "
                    f"p99 {result['p99_ms']:7.2f} ms  errors {result['errors']}")  # fmt: skip

        rounds = 3 if args.smoke else 6
        report["probe"] = run_probe(servers, bodies[1], probe_requests, rounds, client_cpu)
        for key, p in report["probe"].items():
            log(
                f"probe {key:8}: p50 {p['p50_ms']:.3f} ms  p90 {p['p90_ms']:.3f} ms  "
                f"p99 {p['p99_ms']:.3f} ms  ({p['n']} sequential requests, {p['non2xx']} non-2xx)"
            )

        for server in servers:
            server.rss_after_kib = rss_kib(server.proc.pid)  # type: ignore[union-attr]

        if args.profile:
            log("profiling ours under 1 text/request at 64 connections (py-spy)")
            # results.md -> profile.svg + profile.txt beside it (results-x.md -> profile-x.*)
            out = output.with_name(output.stem.replace("results", "profile", 1) or "profile")
            report["profile"] = profile_ours(
                wrk, by_key["ours"], bodies[1], 64, duration, client_cpu, out
            )
        for server in servers:  # alone on the cores from here
            stop_process_group(server.proc)
        report["workers"] = two_workers(
            by_key["ours"], wrk, bodies[1], (server_cpu, client_cpu), duration, warmup
        )
    except BaseException:
        keep_logs = True
        for server in servers:
            if server.proc is not None:
                log(f"--- {server.key} log tail ({server.log_path}):\n{log_tail(server)}")
        raise
    finally:
        for proc in list(children):
            stop_process_group(proc, grace=2)
        for server in servers:
            stop_process_group(server.proc)
        if not keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        log("servers stopped: " + ", ".join(
            f"{s.key} (pid {s.proc.pid}, exit {s.proc.returncode})" for s in servers if s.proc
        ))  # fmt: skip

    import torch  # only for the version in the report; after the servers are gone

    config = json.loads(((ROOT / model_dir) / "config.json").read_text())
    m = config.get("model", {})
    report.update(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=shlex.join(["python", *sys.argv]),
        smoke=args.smoke,
        nproc=os.cpu_count(),
        cpu_model=cpu_model(),
        kernel=platform.release(),
        python=platform.python_version(),
        torch=torch.__version__,
        wrk_version=wrk_version.strip(),
        server_cpu=server_cpu,
        client_cpu=client_cpu,
        warmup_s=warmup,
        duration_s=duration,
        load_start=load_start,
        load_end=loadavg(),
        model_dir=str(model_dir),
        code=code,
        model=f"{config.get('name')} {config.get('version')}: {m.get('rnn_type')}, "
        f"embedding {m.get('embedding_dim')}, hidden {m.get('hidden_dim')}, "
        f"{'bi' if m.get('bidirectional') else 'uni'}directional, pooling {m.get('pooling')}, "
        f"max_length {config.get('max_length')}",
        bodies=body_stats,
        access_log=args.access_log,
        elapsed_s=round(time.monotonic() - started, 1),
        servers=[
            {
                "key": s.key,
                "title": s.title,
                "command": shlex.join(
                    [f"{k}={s.env[k]}" for k in s.shown_env]
                    + [Path(s.command[0]).name, *s.command[1:]]
                ).replace(str(BENCH), "bench"),
                "rss_warm_kib": s.rss_warm_kib,
                "rss_after_kib": s.rss_after_kib,
                "rss_growth": ratio(s.rss_after_kib - s.rss_warm_kib, s.rss_warm_kib),
            }
            for s in servers
        ],
    )
    report["targets"] = check_targets(report)
    output.write_text(render(report), encoding="utf-8")
    output.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    for target in report["targets"]:
        log(f"{'met   ' if target['met'] else 'MISSED'} {target['target']}: {target['measured']}")
    log(f"wrote {shown_path(output)} "
        f"in {report['elapsed_s']} s")  # fmt: skip


if __name__ == "__main__":
    main()
