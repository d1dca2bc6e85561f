#!/usr/bin/env python3
"""Bulk scoring benchmark: rnn-classifier-classify (1 and 2 workers) against the HTTP service at
32 texts per request on the same core, a naive per-row loop, and the Spark job on local[1] and
local[2] (start-up apart from steady state), on the bundled model; peak RSS of each.

    python bench/bulk.py            # 200k texts (and 1M for the memory bound), ~8 min
    python bench/bulk.py --smoke    # 20k texts, no 1M run, a minute or two; asserts nothing

Every path runs pinned (taskset) in its own session: one core is CPU 0, two are CPUs 0 and 1;
wrk loads the service from CPU 1. Results go to bench/bulk-results.md (smoke: bulk-results.smoke.md).
"""

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from loadgen import run_wrk, summarize
from run import write_bodies
from servers import (
    BENCH,
    ROOT,
    Server,
    check_answer,
    children,
    code_version,
    cpu_model,
    ensure_wrk,
    free_port,
    group_pids,
    loadavg,
    log,
    rss_kib,
    start_server,
    stop_process_group,
    wait_ready,
)

DATA = ROOT / "data" / "rotten_tomatoes.csv"
MODEL = Path("model_artifacts")


def make_file(path: Path, rows: int, seed: int = 0) -> Path:
    """Review texts sampled with replacement, an id before them; row groups of 16k rows."""
    with DATA.open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["text"].strip()]
    rng = random.Random(seed)
    with pq.ParquetWriter(path, pa.schema([("id", pa.int64()), ("text", pa.string())])) as out:
        for start in range(0, rows, 100_000):
            count = min(100_000, rows - start)
            ids = pa.array(range(start, start + count), pa.int64())
            sample = pa.array([rng.choice(texts) for _ in range(count)])
            out.write_table(pa.table({"id": ids, "text": sample}), row_group_size=16_384)
    return path


def pss_kib(pgid: int) -> int:
    """Proportional set size summed over a process group: shared pages (the libraries every
    worker maps) counted once in all, where summed RSS counts them in each process."""
    total = 0
    for pid in group_pids(pgid):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def measured(command: list[str], cpus: str, logs: Path, name: str) -> dict[str, Any]:
    """Run `command` pinned to `cpus` in its own session; its wall time, output and the peak RSS
    of its whole process group (workers, JVM and Python workers included), polled every 50 ms."""
    load_before = loadavg()
    out_path, err_path = logs / f"{name}.out", logs / f"{name}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(["taskset", "-c", cpus, *command], cwd=ROOT, stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        children.append(proc)
        peak = peak_pss = 0
        while proc.poll() is None:
            peak = max(peak, rss_kib(proc.pid))
            peak_pss = max(peak_pss, pss_kib(proc.pid))
            time.sleep(0.05)
        wall = time.perf_counter() - started
        children.remove(proc)
    stdout, stderr = out_path.read_text(), err_path.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited with {proc.returncode}:\n{stderr[-3000:]}")
    return {"wall_s": wall, "peak_mib": peak / 1024, "peak_pss_mib": peak_pss / 1024,
            "stdout": stdout, "stderr": stderr,
            "load": f"{load_before} -> {loadavg()}"}  # fmt: skip


def run_cli(source: Path, workers: int, cpus: str, logs: Path, name: str) -> dict[str, Any]:
    target = logs / f"{name}.parquet"
    command = [sys.executable, "-m", "app.bulk", str(source), "-o", str(target),
               "--workers", str(workers), "--no-progress", "--model-dir", str(MODEL)]  # fmt: skip
    result = measured(command, cpus, logs, name)
    found = re.search(r"classified ([\d,]+) rows in ([\d.]+) s", result["stderr"])
    assert found, result["stderr"]
    rows, seconds = int(found[1].replace(",", "")), float(found[2])
    target.unlink()
    # The CLI's own clock runs from the first row read to the last written; the wall time adds
    # the interpreter's and the model's start-up.
    return {**result, "rows": rows, "texts_s": rows / seconds, "startup_s": result["wall_s"] - seconds,
            "cores": len(cpus.split(",")), "command": f"rnn-classifier-classify INPUT -o OUT.parquet --workers {workers}"}  # fmt: skip


def run_http(wrk: str, logs: Path, seconds: int, seed: int) -> dict[str, Any]:
    """The service as bench/run.py runs it (python -m app, WORKERS=1, THREADS=1 on CPU 0), at
    32 texts per request from 4 connections (run.py's t32_c4 scenario) by wrk on CPU 1."""
    _, bodies, _ = write_bodies(logs, seed)
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MODEL_DIR": str(MODEL), "HOST": "127.0.0.1",
           "PORT": str(port), "WORKERS": "1", "THREADS": "1", "LOG_LEVEL": "warning"}  # fmt: skip
    server = Server("ours", "ours", [sys.executable, "-m", "app"], env, port, logs / "http.log")
    load_before = loadavg()
    start_server(server, 0)
    try:
        wait_ready(server, timeout=180)
        check_answer(server, bodies.read_bytes().splitlines()[0], 32)
        run_wrk(wrk, port, bodies, 4, 2, 1)  # warm-up
        raw = run_wrk(wrk, port, bodies, 4, seconds, 1)
        assert server.proc is not None
        peak, peak_pss = rss_kib(server.proc.pid), pss_kib(server.proc.pid)
    finally:
        stop_process_group(server.proc)
    result = summarize(raw, 32)
    return {"texts_s": result["texts_s"], "errors": result["errors"], "cores": 1,
            "peak_mib": peak / 1024, "peak_pss_mib": peak_pss / 1024,
            "load": f"{load_before} -> {loadavg()}",
            "command": "python -m app (WORKERS=1 THREADS=1) + wrk -c4, 32 texts/request"}  # fmt: skip


def run_naive(source: Path, rows: int, logs: Path) -> dict[str, Any]:
    command = [sys.executable, str(BENCH / "naive_loop.py"), str(source),
               str(logs / "naive.parquet"), "--rows", str(rows)]  # fmt: skip
    result = measured(command, "0", logs, "naive")
    done = json.loads(result["stdout"].strip().splitlines()[-1])
    return {**result, "rows": done["rows"], "texts_s": done["rows"] / done["seconds"], "cores": 1,
            "command": f"python bench/naive_loop.py INPUT OUT --rows {rows}"}  # fmt: skip


def run_spark(source: Path, master: str, cpus: str, logs: Path) -> dict[str, Any]:
    name = "spark-" + re.sub(r"\W", "", master)
    env_python = [sys.executable, str(BENCH / "bulk_spark.py")]
    command = [*env_python, str(source), str(logs / name), "--master", master]
    result = measured(command, cpus, logs, name)
    done = json.loads(result["stdout"].strip().splitlines()[-1])
    return {**result, "rows": done["rows"], "texts_s": done["rows"] / done["steady_s"],
            "startup_s": done["startup_s"], "cores": len(cpus.split(",")),
            "command": f"rnn-classifier-classify INPUT -o DIR --engine spark --master '{master}'"}  # fmt: skip


def verdict(value: float, bound: float, higher: bool = True) -> str:
    return "met" if (value >= bound if higher else value <= bound) else "**missed**"


def render(report: dict[str, Any]) -> str:
    r = report["runs"]
    http = r["http"]["texts_s"]
    lines = [
        "# Bulk scoring: rnn-classifier-classify vs the HTTP service, a per-row loop and Spark",
        "",
        f"- Date: {report['date']}",
        f"- Command: `{report['command']}`",
        f"- Machine: {report['nproc']} CPUs ({report['cpu_model']}), Linux {report['kernel']}, "
        f"Python {report['python']}, pyarrow {report['pyarrow']}, pyspark {report['pyspark']}; "
        "one core = CPU 0, two = CPUs 0-1, each path in its own session (setsid); wrk on CPU 1",
        f"- Load average (1/5/15 min) at start: {report['load_start']}; at end: "
        f"{report['load_end']} (per row below: before -> after it ran)",
        f"- Code: {report['code']}; model: `{MODEL}` ({report['model']})",
        f"- Input: {report['rows']:,} review texts sampled with replacement from "
        "data/rotten_tomatoes.csv, as Parquet (row groups of 16k rows); output Parquet with every "
        f"input column and the added ones; the per-row loop on the first {report['naive_rows']:,}",
        "",
        "texts/s: the steady state (the CLI from its first row read to its last written; the "
        "service under wrk after a warm-up; Spark's job on the whole file once a first small job "
        "has started its workers). Start-up: the rest of the command's wall time (interpreter, "
        "model, worker processes; Spark's session and first job). Peak RSS: the process group's "
        "summed, sampled every 50 ms (the service: after its run); peak PSS the same with shared "
        "pages counted once (what several processes really hold together).",
        "",
        "| path | cores | texts/s | per core | vs HTTP, same core | start-up | peak RSS | peak PSS | load average |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key in ("cli1", "cli2", "http", "naive", "spark1", "spark2", "cli1_1m"):
        if key not in r:
            continue
        run = r[key]
        start = f"{run['startup_s']:.1f} s" if "startup_s" in run else ""
        lines.append(
            f"| {run['title']} | {run['cores']} | {run['texts_s']:,.0f} | "
            f"{run['texts_s'] / run['cores']:,.0f} | {run['texts_s'] / http:.2f}x | {start} | "
            f"{run['peak_mib']:.0f} MiB | {run['peak_pss_mib']:.0f} MiB | {run['load']} |"
        )
    lines += ["", "Commands: " + "; ".join(f"{r[k]['title']}: `{r[k]['command']}`" for k in r), ""]
    lines += targets(report)
    return "\n".join(lines) + "\n"


def targets(report: dict[str, Any]) -> list[str]:
    r = report["runs"]
    one, two, http = r["cli1"]["texts_s"], r["cli2"]["texts_s"], r["http"]["texts_s"]
    spark = r["spark2"]["texts_s"] / two
    rows = [
        ("CLI, 1 worker, 1 core >= 2x the HTTP service's texts/s", f"{one / http:.2f}x",
         verdict(one / http, 2.0)),
        ("CLI, 2 workers >= 1.6x 1 worker", f"{two / one:.2f}x", verdict(two / one, 1.6)),
        (f"peak RSS <= 400 MiB on {report['rows']:,} texts, 1 worker",
         f"{r['cli1']['peak_mib']:.0f} MiB", verdict(r["cli1"]["peak_mib"], 400, False)),
        ("the same, 2 workers (3 processes, RSS summed; PSS)",
         f"{r['cli2']['peak_mib']:.0f} MiB; PSS {r['cli2']['peak_pss_mib']:.0f} MiB",
         verdict(r["cli2"]["peak_mib"], 400, False)),
        ("Spark local[2] steady state >= 0.6x the CLI with 2 workers", f"{spark:.2f}x",
         verdict(spark, 0.6)),
    ]  # fmt: skip
    if "cli1_1m" in r:
        big = r["cli1_1m"]["peak_mib"]
        rows.append((f"memory bounded as the file grows: 1 worker on {r['cli1_1m']['rows']:,} texts",
                     f"{big:.0f} MiB (vs {r['cli1']['peak_mib']:.0f} on {report['rows']:,})",
                     verdict(big, max(400.0, r["cli1"]["peak_mib"] * 1.1), False)))  # fmt: skip
    out = ["## Targets", "", "| target | measured | |", "|---|---|---|"]
    return out + [f"| {a} | {b} | {c} |" for a, b, c in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="20k texts, no 1M run")
    parser.add_argument("--rows", type=int, help="texts in the file (default 200k; smoke 20k)")
    parser.add_argument("--naive-rows", type=int, default=50_000, help="rows the loop scores")
    parser.add_argument("--duration", type=int, help="seconds of wrk (default 10; smoke 2)")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--from-json", type=Path,
                        help="write the report again from a run's .json, running nothing")  # fmt: skip
    args = parser.parse_args()
    if args.from_json:
        target = args.output or args.from_json.with_suffix(".md")
        target.write_text(render(json.loads(args.from_json.read_text())))
        return
    rows = args.rows or (20_000 if args.smoke else 200_000)
    output = args.output or BENCH / ("bulk-results.smoke.md" if args.smoke else "bulk-results.md")
    wrk = ensure_wrk()
    logs = Path(tempfile.mkdtemp(prefix="rnn-bench-bulk-"))
    report: dict[str, Any] = {"load_start": loadavg(), "rows": rows, "runs": {}}
    source = make_file(logs / "texts.parquet", rows)
    plan: list[tuple[str, str, Any]] = [
        ("cli1", "CLI, 1 worker", lambda: run_cli(source, 1, "0", logs, "cli1")),
        ("cli2", "CLI, 2 workers", lambda: run_cli(source, 2, "0,1", logs, "cli2")),
        ("http", "HTTP service, 32 texts/request", lambda: run_http(wrk, logs, args.duration or (2 if args.smoke else 10), 0)),
        ("naive", "naive per-row loop", lambda: run_naive(source, min(args.naive_rows, rows), logs)),
        ("spark1", "Spark local[1]", lambda: run_spark(source, "local[1]", "0", logs)),
        ("spark2", "Spark local[2]", lambda: run_spark(source, "local[2]", "0,1", logs)),
    ]  # fmt: skip
    if not args.smoke:
        big = logs / "texts-1m.parquet"
        plan.append(("cli1_1m", "CLI, 1 worker, 1M texts",
                     lambda: run_cli(make_file(big, 1_000_000, 1), 1, "0", logs, "cli1-1m")))  # fmt: skip
    try:
        for key, title, step in plan:
            log(f"{title} ...")
            result = {k: v for k, v in step().items() if k not in ("stdout", "stderr")}
            report["runs"][key] = {**result, "title": title}
            log(f"{title}: {result['texts_s']:,.0f} texts/s, peak RSS {result['peak_mib']:.0f} MiB")
    finally:
        for proc in list(children):
            stop_process_group(proc, grace=2)
    config = json.loads((ROOT / MODEL / "config.json").read_text())
    report.update(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=shlex.join(["python", "bench/bulk.py", *sys.argv[1:]]),
        nproc=os.cpu_count(), cpu_model=cpu_model(), kernel=platform.release(),
        python=platform.python_version(), pyarrow=pa.__version__,
        pyspark=__import__("pyspark").__version__, load_end=loadavg(), code=code_version(),
        model=f"{config['name']} {config['version']}", naive_rows=min(args.naive_rows, rows),
    )  # fmt: skip
    output.write_text(render(report))
    output.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {output}")
    subprocess.run(["rm", "-rf", str(logs)], check=False)


if __name__ == "__main__":
    main()
