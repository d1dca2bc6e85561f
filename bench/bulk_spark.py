"""The `--engine spark` job of rnn-classifier-classify, timed in two parts for bench/bulk.py:
start-up (the session, then a first small job that starts the Python workers and loads the
model in each) apart from the steady state (the whole file, with everything warm).

    python bench/bulk_spark.py INPUT.parquet OUTPUT_DIR --master 'local[2]'

Prints one JSON line: startup_s, steady_s, rows.
"""

import argparse
import json
import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq

from app.bulk.cli import parser as cli_parser
from app.bulk.spark_job import spark_session, write_scored


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--model-dir", type=Path, default=Path("model_artifacts"))
    args = parser.parse_args()
    started = time.perf_counter()
    spark = spark_session(args.master, "bench-bulk")
    try:
        # Two files, so that the first job has a task for each core and starts every worker.
        warm_in = args.output.with_name(args.output.name + "-warm-in")
        warm_in.mkdir(exist_ok=True)
        head = pq.read_table(args.input).slice(0, 20_000)
        for part in range(2):
            pq.write_table(head.slice(part * 10_000, 10_000), warm_in / f"part-{part}.parquet")
        for source, target in ((warm_in, args.output.with_name(args.output.name + "-warm")),
                               (args.input, args.output)):  # fmt: skip
            shutil.rmtree(target, ignore_errors=True)
            job = cli_parser().parse_args([str(source), "-o", str(target), "--engine", "spark"])
            begun = time.perf_counter()
            write_scored(spark, job, args.model_dir)
            if source == warm_in:
                startup = time.perf_counter() - started
            else:
                steady = time.perf_counter() - begun
    finally:
        spark.stop()
    rows = pq.read_metadata(args.input).num_rows
    print(json.dumps({"startup_s": startup, "steady_s": steady, "rows": rows}))


if __name__ == "__main__":
    main()
