"""rnn-classifier-classify gives every row of a file what /classify gives its text: the real
server and the console script, each in its own process, in every format, with 1 and 2 workers."""

from pathlib import Path

import pytest

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

TEXTS = mixed_texts(3000, seed=7)


@pytest.fixture(scope="module")
def answers(bundled_server: Server) -> dict[str, object]:
    return service_answers(bundled_server.base_url, TEXTS)


@pytest.mark.parametrize(
    ("source", "target", "workers"),
    [
        ("in.csv", "out.csv", "1"),
        ("in.jsonl", "out.jsonl", "2"),
        ("in.parquet", "out.parquet", "1"),
        ("in.csv", "out.parquet", "2"),
    ],
)
def test_every_row_gets_what_classify_gives_it(
    answers: dict[str, object], tmp_path: Path, source: str, target: str, workers: str
) -> None:
    write_table(table_of(TEXTS), tmp_path / source)
    done = run_cli(str(tmp_path / source), "-o", str(tmp_path / target), "--workers", workers)
    assert done.returncode == 0, done.stderr
    assert f"classified {len(TEXTS):,} rows" in done.stderr
    assert "refused: 2 rows" in done.stderr
    rows = read_output(tmp_path / target).to_pylist()
    assert [row["text"] for row in rows] == TEXTS  # input order, with 2 workers too
    assert_same_as_service(rows, answers)
