"""Files for the bulk scoring tests: review texts with refused rows among them, in any format, and
the CLI run as users run it."""

import csv
import gzip
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from tests.support.artifacts import ROOT

REVIEWS = ROOT / "data" / "rotten_tomatoes.csv"
# Rows the service would refuse (and so get no label, an error), and one over the model's max
# length, which it cuts and classifies.
EMPTY, BLANK = "", "  \t "
LONG = " ".join(["a film that goes on and on"] * 20)


def review_texts(count: int, seed: int = 0) -> list[str]:
    with REVIEWS.open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f) if row["text"].strip()]
    rng = random.Random(seed)
    return [rng.choice(texts) for _ in range(count)]


def mixed_texts(count: int, seed: int = 0) -> list[str]:
    """Reviews with an empty, a whitespace-only and an over-long text spread among them."""
    texts = review_texts(count, seed)
    for i, special in ((3, EMPTY), (count // 2, BLANK), (count - 2, LONG)):
        texts[i] = special
    return texts


def table_of(texts: list[Any], text_column: str = "text") -> pa.Table:
    """An id column before the texts and a column after them, to check columns and order."""
    ids = list(range(len(texts)))
    return pa.table(
        {"id": ids, text_column: pa.array(texts, pa.string()), "note": [f"n{i}" for i in ids]}
    )


def write_table(table: pa.Table, path: Path) -> Path:
    """As its extension says: .parquet, .csv or .jsonl, gzip-compressed under .gz."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        pq.write_table(table, path, row_group_size=1000)
        return path
    if name.endswith(".csv"):
        buffer = pa.BufferOutputStream()
        pa_csv.write_csv(table, buffer)
        data = buffer.getvalue().to_pybytes()
    else:
        data = b"".join(orjson.dumps(row) + b"\n" for row in table.to_pylist())
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def read_output(path: Path) -> pa.Table:
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet") or path.is_dir():
        return pq.read_table(path)
    if name.endswith(".csv"):
        # Written by pyarrow: a null is an empty field, an empty text a quoted "".
        convert = pa_csv.ConvertOptions(
            column_types={"label": pa.string(), "error": pa.string()},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        )
        return pa_csv.read_csv(path, convert_options=convert)
    return pa_json.read_json(path)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m app.bulk ...` in a subprocess, as the console script runs it."""
    return subprocess.run(
        [sys.executable, "-m", "app.bulk", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def service_answers(base_url: str, texts: list[str]) -> dict[str, Any]:
    """/classify's answer for each distinct text: its result, or for a refused text the 422's
    message without the "texts.N: " in front."""
    answers: dict[str, Any] = {}
    distinct = sorted(set(texts))
    with httpx.Client(base_url=base_url, timeout=60) as client:
        accepted = []
        for text in distinct:
            if not text.strip() or len(text) > 20_000:
                refused = client.post("/classify", json={"texts": [text]})
                assert refused.status_code == 422, refused.text
                answers[text] = refused.json()["error"]["message"].split(": ", 1)[1]
            else:
                accepted.append(text)
        for start in range(0, len(accepted), 256):
            chunk = accepted[start : start + 256]
            response = client.post("/classify", json={"texts": chunk})
            assert response.status_code == 200, response.text
            answers.update(zip(chunk, response.json()["results"], strict=True))
    return answers


def assert_same_as_service(rows: list[dict[str, Any]], answers: dict[str, Any]) -> None:
    """Every row's label, score and probabilities as /classify's within 1e-5; a refused row
    without them, with the service's own reason."""
    for row in rows:
        answer = answers[row["text"]]
        if isinstance(answer, str):
            assert row["label"] is None and row["score"] is None, row
            assert row["error"] == answer, row
            continue
        assert row["error"] is None, row
        assert row["label"] == answer["label"], row
        assert abs(row["score"] - answer["score"]) <= 1e-5, (row, answer)
        for label, probability in answer["probabilities"].items():
            assert abs(row[f"probability_{label}"] - probability) <= 1e-5, (row, answer)
