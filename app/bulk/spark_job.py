"""`rnn-classifier-classify --engine spark INPUT --output DIR`: the same scoring as a Spark job.

It reads INPUT with Spark (CSV with a header, every column as text; JSON lines; Parquet), adds
the CLI's columns through the UDF of app/bulk/spark.py, and writes DIR as Parquet files, first
under a temporary name beside DIR that is renamed once the job has succeeded.
"""

import argparse
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from app.bulk.errors import PROG, Failure
from app.bulk.formats import FileError, file_format

JAVA_MISSING = (
    "Spark needs a Java 17 runtime: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
)


def spark_session(master: str, app_name: str = PROG) -> Any:
    """A session whose Python workers run this interpreter (not the system python3, which lacks
    the packages). Quiet: Spark's own log goes to warnings only, and its web UI stays off."""
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise Failure(JAVA_MISSING)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    if master.startswith("local"):
        # Everything on this machine: the driver on loopback, not on whatever address the
        # host name resolves to (Spark would pick the first interface's).
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    spark = (
        builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Texts are small: Spark's 128 MB splits would give a 100 MB file of reviews one task
        # of minutes on one core. 4 MB is ~40k texts, some seconds of scoring per task.
        .config("spark.sql.files.maxPartitionBytes", "4m")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_input(spark: Any, path: str, file_fmt: str, encoding: str) -> Any:
    reader = spark.read
    if file_fmt == "csv":
        utf8 = encoding.lower().replace("-", "").replace("_", "") == "utf8"
        # As the local CLI reads CSV: a header, every column text, quoted values that hold line
        # breaks or "" (RFC 4180) read whole.
        return (
            reader.option("header", True)
            .option("multiLine", True)
            .option("escape", '"')
            .option("encoding", "utf-8" if utf8 else encoding)
            .csv(path)
        )
    if file_fmt == "jsonl":
        return reader.json(path)
    return reader.parquet(path)


def _hadoop_fs(spark: Any, path: str) -> tuple[Any, Any]:
    """The Hadoop file system of `path` (local, HDFS, S3...), so that the final rename works on
    whatever the job writes to."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    return hadoop_path.getFileSystem(conf), hadoop_path


def _classify(spark: Any, args: argparse.Namespace, model_dir: Path) -> tuple[Any, list[str]]:
    from app.bulk.local import load_model
    from app.bulk.spark import classify_udf, ship_model, struct_fields

    try:
        source_format = file_format(Path(args.input), args.format)
    except FileError:
        source_format = "parquet"  # a directory or a URI: a table's files, as data lakes keep them
    artifacts, settings = load_model(model_dir)
    frame = read_input(spark, str(args.input), source_format, args.encoding)
    if args.text_column not in frame.columns:
        shown = ", ".join(repr(name) for name in frame.columns[:20])
        raise Failure(
            f"{args.input}: no column {args.text_column!r} (columns: {shown}); pass --text-column"
        )
    added = [args.prefix + n for n in ("label", "score", "error")]
    added += [f"{args.prefix}probability_{label}" for label in artifacts.labels]
    clashes = [name for name in added if name in frame.columns]
    if clashes:
        raise Failure(
            f"{args.input}: already has column(s) {', '.join(map(repr, clashes))}; "
            "pass --prefix (e.g. --prefix predicted_) to name the added columns apart"
        )
    # Shipped with the job, so the same command works on a cluster whose executors do not see
    # this machine's files.
    classify = classify_udf(
        ship_model(spark, model_dir), args.batch_size, settings.max_text_chars, settings.truncation
    )
    prediction = classify(frame[args.text_column])
    scored = frame.select(*frame.columns, *struct_fields(prediction, artifacts.labels, args.prefix))
    return scored, artifacts.labels


def run_spark(args: argparse.Namespace, model_dir: Path) -> int:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    started = time.monotonic()
    spark = spark_session(args.master)
    try:
        output, labels = write_scored(spark, args, model_dir)
        summary = spark_summary(spark, output, labels, args, time.monotonic() - started)
        print(summary, file=sys.stderr)
        return 0
    except (PySparkException, Py4JJavaError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Failure(f"{args.input}: Spark job failed: {first}") from exc
    finally:
        spark.stop()


def write_scored(spark: Any, args: argparse.Namespace, model_dir: Path) -> tuple[str, list[str]]:
    """The job itself, in a session that is the caller's: --output written whole, or not at all."""
    output = str(args.output)
    fs, target = _hadoop_fs(spark, output)
    if fs.exists(target):
        raise Failure(f"{output}: already exists; remove it or choose another --output")
    scored, labels = _classify(spark, args, model_dir)
    partial = f"{output.rstrip('/')}.partial-{uuid.uuid4().hex[:8]}"
    _, partial_path = _hadoop_fs(spark, partial)
    try:
        scored.write.parquet(partial)
        if not fs.rename(partial_path, target):
            raise Failure(f"{output}: could not rename {partial} to it")
    finally:
        if fs.exists(partial_path):
            fs.delete(partial_path, True)
    return output, labels


def spark_summary(
    spark: Any, output: str, labels: list[str], args: argparse.Namespace, seconds: float
) -> str:
    """The local CLI's summary, counted from the written files (two small columns)."""
    label, error = args.prefix + "label", args.prefix + "error"
    counts = {
        (row[label], row[error]): row["count"]
        for row in spark.read.parquet(output).groupBy(label, error).count().collect()
    }
    rows = sum(counts.values())
    per_label = {name: sum(n for (lb, _), n in counts.items() if lb == name) for name in labels}
    refused = sum(n for (lb, _), n in counts.items() if lb is None)
    lines = [
        f"classified {rows:,} rows in {seconds:.1f} s (Spark, master {args.master}) -> {output}",
        "labels: " + ", ".join(f"{name} {per_label[name]:,}" for name in labels),
        f"refused: {refused:,} rows, no label (see the error column)"
        if refused
        else "refused: none",
    ]
    return "\n".join(lines)
