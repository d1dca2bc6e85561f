"""Bulk scoring on real Spark (pyspark in local mode, Debian's Java 17): the pandas UDF gives
every row what /classify gives its text, loads the model once per Python worker from a path or
from the files shipped with the job, and `--engine spark` writes what the local CLI writes."""

import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.artifacts import BUNDLED_MODEL
from tests.support.bulk import (
    assert_same_as_service,
    mixed_texts,
    read_output,
    run_cli,
    service_answers,
    table_of,
    write_table,
)
from tests.support.servers import Server
from tests.support.system import require_system

TEXTS = mixed_texts(1200, seed=11)
ADDED = ["label", "score", "probability_negative", "probability_positive", "error"]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    require_system("java", "apt-get install openjdk-17-jre-headless")
    from app.bulk.spark_job import spark_session

    session = spark_session("local[2]", "rnn-classifier-tests")
    yield session
    session.stop()
    # py4j closes its connections at interpreter exit and logs that at INFO, by then into a
    # stream pytest has closed: a "Logging error" traceback after the summary.
    logging.getLogger("py4j").setLevel(logging.WARNING)


def frame(spark: Any, texts: list[str | None]) -> Any:
    rows = [(i, text) for i, text in enumerate(texts)]
    return spark.createDataFrame(rows, "id long, text string").repartition(4)


def scored_rows(scored: Any) -> list[dict[str, Any]]:
    rows = scored.orderBy("id").select("id", "text", "p.*").collect()
    flat = []
    for row in rows:
        item = row.asDict()
        for label, value in (item.pop("probabilities") or {}).items():
            item[f"probability_{label}"] = value
        flat.append(item)
    return flat


def test_the_udf_gives_every_row_what_classify_gives_it(spark: Any, bundled_server: Server) -> None:
    from app.bulk.spark import classify_udf

    classify = classify_udf(str(BUNDLED_MODEL))
    rows = scored_rows(frame(spark, [*TEXTS, None]).withColumn("p", classify("text")))
    assert [row["id"] for row in rows] == list(range(len(TEXTS) + 1))
    assert rows[-1]["label"] is None and rows[-1]["error"] == "no text (null)"
    assert_same_as_service(rows[:-1], service_answers(bundled_server.base_url, TEXTS))


def test_the_model_travels_by_path_and_loads_once_per_worker(spark: Any, tmp_path: Path) -> None:
    from pyspark import cloudpickle

    from app.bulk.spark import classify_udf, ship_model

    # A copy under a name no worker can find as a path: only SparkFiles has it.
    copy = shutil.copytree(BUNDLED_MODEL, tmp_path / "shipped-model")
    name = ship_model(spark, copy)
    assert name == "shipped-model" and not Path(name).exists()
    classify = classify_udf(name)
    assert len(cloudpickle.dumps(classify.func)) < 20_000  # the path, not the 2 MB of weights
    texts = mixed_texts(400, seed=5)
    first = scored_rows(frame(spark, texts).withColumn("p", classify("text")))
    again = scored_rows(frame(spark, texts).withColumn("p", classify("text")))
    assert first == again
    direct = scored_rows(
        frame(spark, texts).withColumn("p", classify_udf(str(BUNDLED_MODEL))("text"))
    )
    assert [r["label"] for r in first] == [r["label"] for r in direct]

    def worker_state(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        import app.bulk.spark as bulk_spark

        for _ in batches:
            threads = sorted({key[1] for key in bulk_spark._scorers})
            yield pd.DataFrame({"pid": [os.getpid()], "loads": [bulk_spark.loads],
                                "threads": [str(threads)]})  # fmt: skip

    state = frame(spark, texts).mapInPandas(worker_state, "pid long, loads long, threads string")
    workers = {row.pid: row for row in state.collect()}
    # Two models (the shipped copy and the path) over six jobs: at most one load of each per
    # worker; every engine with spark.task.cpus (1 here) threads.
    assert all(row.loads <= 2 for row in workers.values()), workers
    assert any(row.loads >= 1 for row in workers.values()), workers
    assert {row.threads for row in workers.values() if row.loads} == {"[1]"}, workers


def test_spark_job_refuses_a_missing_column_and_an_existing_output(
    spark: Any, tmp_path: Path
) -> None:
    from app.bulk.cli import parser
    from app.bulk.errors import Failure
    from app.bulk.spark_job import write_scored

    source = write_table(table_of(["a film"], text_column="body"), tmp_path / "in.parquet")
    args = parser().parse_args([str(source), "-o", str(tmp_path / "out"), "--engine", "spark"])
    with pytest.raises(Failure, match=r"no column 'text'.*'body'"):
        write_scored(spark, args, BUNDLED_MODEL)
    (tmp_path / "out").mkdir()
    with pytest.raises(Failure, match="already exists"):
        write_scored(spark, args, BUNDLED_MODEL)
    assert sorted(os.listdir(tmp_path)) == ["in.parquet", "out"]


def test_the_spark_cli_writes_what_the_local_cli_writes(tmp_path: Path) -> None:
    require_system("java", "apt-get install openjdk-17-jre-headless")
    source = write_table(table_of(TEXTS), tmp_path / "in.parquet")
    local = run_cli(str(source), "-o", str(tmp_path / "local.parquet"))
    assert local.returncode == 0, local.stderr
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    done = run_cli(str(source), "-o", str(tmp_path / "spark"), "--engine", "spark",
                   "--master", "local[2]", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"classified {len(TEXTS):,} rows" in done.stderr
    assert not [name for name in os.listdir(tmp_path) if "partial" in name]
    spark_rows = read_output(tmp_path / "spark").to_pylist()
    local_rows = read_output(tmp_path / "local.parquet").to_pylist()
    assert list(spark_rows[0]) == ["id", "text", "note", *ADDED]
    assert [row["id"] for row in spark_rows] == list(range(len(TEXTS)))  # input order
    for ours, theirs in zip(spark_rows, local_rows, strict=True):
        assert ours["label"] == theirs["label"] and ours["error"] == theirs["error"]
        if ours["score"] is not None:
            assert abs(ours["score"] - theirs["score"]) <= 1e-5
