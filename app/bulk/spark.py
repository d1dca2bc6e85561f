"""The batch-scoring core in a Spark job: a pandas UDF giving struct<label, score, probabilities,
error> for a column of texts, in the user's own job or in `rnn-classifier-classify --engine spark`.

    from app.bulk.spark import classify_udf, ship_model

    classify = classify_udf(ship_model(spark, "model_artifacts"))
    scored = df.withColumn("prediction", classify("text"))
    scored.select("id", "prediction.label", "prediction.score", "prediction.probabilities")

What travels to the executors is the model's path and a few numbers, never the model: each
Python worker loads it once, from that path or from the files shipped with the job (SparkFiles),
and keeps it for every task it runs (Python workers are reused, spark.python.worker.reuse). The
engine runs spark.task.cpus intra-op threads, the cores Spark gave the task.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pyspark import SparkFiles, TaskContext
from pyspark.sql import Column, SparkSession
from pyspark.sql.pandas.functions import pandas_udf
from pyspark.sql.types import FloatType, MapType, StringType, StructField, StructType

from app.bulk.scoring import DEFAULT_BATCH_SIZE, Scorer, Scores
from app.core.artifacts import CONFIG_FILE
from app.settings import get_settings

RESULT_TYPE = StructType(
    [
        StructField("label", StringType()),  # null for a refused text
        StructField("score", FloatType()),
        StructField("probabilities", MapType(StringType(), FloatType())),
        StructField("error", StringType()),  # why the service would refuse it; null otherwise
    ]
)

# One scorer per model, per thread count, per Python worker process: loaded by the first task
# that needs it, reused by the next ones.
_scorers: dict[tuple[Any, ...], Scorer] = {}
loads = 0  # models this worker loaded (read by the tests: once per worker, not per task)


def ship_model(spark: SparkSession, model_dir: str | Path) -> str:
    """Send a model directory with the job (SparkContext.addFile), for executors that do not share
    the driver's file system; returns the name to give classify_udf."""
    path = Path(model_dir).resolve()
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{model_dir}: no {CONFIG_FILE}, not a model directory")
    spark.sparkContext.addFile(str(path), recursive=True)
    return path.name


def resolve_model_dir(model_dir: str) -> Path:
    """Where this executor finds the model: an absolute path as it is; a name shipped with the
    job (ship_model, or spark-submit --files / --archives) in SparkFiles; else a path relative
    to the worker's directory."""
    candidates = [Path(model_dir)]
    if not Path(model_dir).is_absolute():
        candidates.insert(0, Path(SparkFiles.get(model_dir)))
    for candidate in candidates:
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise FileNotFoundError(
        f"model {model_dir!r} is not on this executor (looked in {', '.join(map(str, candidates))}"
        "): ship it with ship_model(), --files or --archives, or give a path every executor has"
    )


def _scorer(
    model_dir: str, batch_size: int, max_text_chars: int, truncation: Literal["truncate", "reject"]
) -> Scorer:
    context = TaskContext.get()
    threads = context.cpus() if context is not None else 1
    key = (model_dir, threads, batch_size, max_text_chars, truncation)
    if key not in _scorers:
        global loads
        loads += 1
        path = resolve_model_dir(model_dir)
        _scorers[key] = Scorer.load(path, threads, batch_size, max_text_chars, truncation)
    return _scorers[key]


def result_frame(scores: Scores, labels: list[str]) -> pd.DataFrame:
    refused = scores.refused
    best = np.where(refused, 0, scores.best)
    names = np.array(labels, dtype=object)[best]
    names[refused] = None
    score = scores.probabilities[np.arange(len(best)), best]
    probabilities = [
        None if no else dict(zip(labels, row, strict=True))
        for no, row in zip(refused.tolist(), scores.probabilities.tolist(), strict=True)
    ]
    # NaN score rows are refused ones: Spark reads them as nulls.
    return pd.DataFrame(
        {"label": names, "score": score, "probabilities": probabilities, "error": scores.errors}
    )


def score_batches(
    batches: Iterator[pd.Series],
    model_dir: str,
    batch_size: int,
    max_text_chars: int,
    truncation: Literal["truncate", "reject"],
) -> Iterator[pd.DataFrame]:
    """The UDF's body, at module level so that Spark's pickle refers to it by name and each
    worker runs its own import of this module (and so its own _scorers)."""
    scorer = _scorer(model_dir, batch_size, max_text_chars, truncation)
    for texts in batches:
        values = texts.astype(object).where(texts.notna(), None).tolist()
        yield result_frame(scorer.score(values), scorer.labels)


def classify_udf(
    model_dir: str | Path,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_text_chars: int | None = None,
    truncation: Literal["truncate", "reject"] | None = None,
) -> Any:
    """A pandas UDF: a column of texts -> struct<label, score, probabilities, error> per row, as
    /classify answers (MAX_TEXT_CHARS and TRUNCATION from this process's settings unless given).
    `model_dir`: a path every executor can read, or the name ship_model() returned."""
    settings = get_settings()
    where = str(model_dir)
    chars = max_text_chars or settings.max_text_chars
    cut = truncation or settings.truncation

    def classify(texts: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        return score_batches(texts, where, batch_size, chars, cut)

    return pandas_udf(classify, RESULT_TYPE)  # type: ignore[call-overload]


def struct_fields(prediction: Column, labels: list[str], prefix: str = "") -> list[Column]:
    """The struct as the CLI's columns: label, score, probability_<label>..., error."""
    columns = [prediction["label"].alias(prefix + "label")]
    columns.append(prediction["score"].alias(prefix + "score"))
    columns += [
        prediction["probabilities"][label].alias(f"{prefix}probability_{label}") for label in labels
    ]
    return [*columns, prediction["error"].alias(prefix + "error")]
