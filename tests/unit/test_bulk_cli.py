"""rnn-classifier-classify on files, in-process: every format, columns and row order, refused
rows, and the one-line failures that leave no output behind."""

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.bulk.cli import main
from app.bulk.scoring import Scorer
from app.engines.onnx_runtime import OnnxEngine
from app.lifecycle.validation import EMPTY as EMPTY_MESSAGE
from app.settings import get_settings
from tests.support.artifacts import BUNDLED_MODEL, make_repository
from tests.support.bulk import BLANK, EMPTY, LONG, mixed_texts, read_output, table_of, write_table

ADDED = ["label", "score", "probability_negative", "probability_positive", "error"]


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings are cached per process; a test that sets MAX_TEXT_CHARS needs them read again."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def classify(*args: str | Path) -> int:
    return main([str(arg) for arg in args] + ["--model-dir", str(BUNDLED_MODEL), "--no-progress"])


def alone(texts: list[str]) -> dict[str, np.ndarray]:
    """Each text's probabilities run on its own, a batch of one, as a lone /classify request is."""
    scorer = Scorer.load(BUNDLED_MODEL)
    engine = OnnxEngine(*_network())
    out = {}
    for text in set(texts):
        item = scorer.rules.encode(text)
        if not isinstance(item, str):
            out[text] = engine.predict([item.ids])[0]
    return out


def _network() -> tuple[object, ...]:
    from app.core.artifacts import load_artifacts

    artifacts = load_artifacts(BUNDLED_MODEL)
    return artifacts.architecture, artifacts.weights, 1


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("in.csv", "out.csv"),
        ("in.jsonl", "out.jsonl"),
        ("in.parquet", "out.parquet"),
        ("in.csv.gz", "out.parquet"),
        ("in.parquet", "out.jsonl.gz"),
    ],
)
def test_every_format_keeps_columns_and_order_and_scores_each_row(
    tmp_path: Path, source: str, target: str
) -> None:
    texts = mixed_texts(2500)
    write_table(table_of(texts), tmp_path / source)
    assert classify(tmp_path / source, "--output", tmp_path / target, "--batch-size", "64") == 0
    out = read_output(tmp_path / target)
    assert out.column_names == ["id", "text", "note", *ADDED]
    # Input order (a CSV input keeps its text: "7" stays "7", not 7).
    assert [int(i) for i in out["id"].to_pylist()] == list(range(len(texts)))
    assert out["text"].to_pylist() == texts
    assert out["note"].to_pylist() == [f"n{i}" for i in range(len(texts))]
    expected = alone(texts)
    labels = ["negative", "positive"]
    for row in out.to_pylist():
        if row["text"] in (EMPTY, BLANK):
            assert row["label"] is None and row["score"] is None, row
            assert row["error"] == EMPTY_MESSAGE
            continue
        want = expected[row["text"]]
        assert row["error"] is None
        assert row["label"] == labels[int(want.argmax())]
        assert row["score"] == pytest.approx(float(want.max()), abs=1e-5)
        got = [row["probability_negative"], row["probability_positive"]]
        assert got == pytest.approx(want.tolist(), abs=1e-5)
    assert set(os.listdir(tmp_path)) == {source, target}  # no partial file left


def test_refused_rows_say_why_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAX_TEXT_CHARS", "60")
    texts = ["a lovely film", EMPTY, "x" * 61, BLANK, "dull", LONG]
    write_table(table_of([*texts, None]), tmp_path / "in.jsonl")
    assert classify(tmp_path / "in.jsonl", "-o", tmp_path / "out.csv") == 0
    rows = read_output(tmp_path / "out.csv").to_pylist()
    assert [row["error"] for row in rows] == [
        None,
        EMPTY_MESSAGE,
        "61 characters, at most 60",
        EMPTY_MESSAGE,
        None,
        f"{len(LONG)} characters, at most 60",
        "no text (null)",
    ]
    assert [row["label"] is None for row in rows] == [False, True, True, True, False, True, True]
    summary = capsys.readouterr().err
    assert "classified 7 rows" in summary
    assert "refused: 5 rows" in summary
    assert "empty or whitespace-only text: 2" in summary


def test_truncation_reject_refuses_what_the_service_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUNCATION", "reject")
    write_table(table_of(["short and sweet", LONG]), tmp_path / "in.parquet")
    assert classify(tmp_path / "in.parquet", "-o", tmp_path / "out.parquet") == 0
    errors = read_output(tmp_path / "out.parquet")["error"].to_pylist()
    assert errors[0] is None
    assert errors[1] == "140 tokens, the model reads at most 40 (TRUNCATION=reject)"


def assert_failed_cleanly(
    capsys: pytest.CaptureFixture[str], code: int, directory: Path, *needles: str
) -> None:
    """Exit 1, one line on stderr naming the problem, no traceback, no output of any name."""
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("rnn-classifier-classify: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert not [name for name in os.listdir(directory) if name.startswith(("out", ".out"))]


@pytest.mark.parametrize("name", ["in.csv", "in.jsonl", "in.parquet"])
def test_a_missing_text_column_names_the_file_and_the_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    source = write_table(table_of(["a film"], text_column="body"), tmp_path / name)
    code = classify(source, "-o", tmp_path / "out.csv")
    assert_failed_cleanly(capsys, code, tmp_path, str(source), "no column 'text'", "'body'")
    assert classify(source, "-o", tmp_path / "out.csv", "--text-column", "body") == 0


def test_unreadable_files_fail_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.csv"
    assert_failed_cleanly(capsys, classify(missing, "-o", tmp_path / "out.csv"), tmp_path,
                          str(missing), "no such file")  # fmt: skip
    garbage = tmp_path / "in.parquet"
    garbage.write_bytes(b"not parquet at all")
    assert_failed_cleanly(capsys, classify(garbage, "-o", tmp_path / "out.csv"), tmp_path,
                          str(garbage))  # fmt: skip
    unknown = tmp_path / "in.xlsx"
    unknown.write_bytes(b"")
    assert_failed_cleanly(capsys, classify(unknown, "-o", tmp_path / "out.csv"), tmp_path,
                          "unknown format", "--format")  # fmt: skip


def test_bad_encoding_late_in_the_file_leaves_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Far past the first block (a wide column makes it 6 MB in 3,000 rows), so rows are
    # already written when the bad byte is read.
    pad = "p" * 2000
    good = "".join(f"{i},{pad},a fine film number {i}\n" for i in range(3000))
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,pad,text\n" + good.encode() + b"99,p,caf\xe9 cr\xe8me\n")
    code = classify(source, "-o", tmp_path / "out.csv")
    assert_failed_cleanly(capsys, code, tmp_path, str(source), "not valid UTF-8")
    assert classify(source, "-o", tmp_path / "out.csv", "--encoding", "latin-1") == 0
    assert read_output(tmp_path / "out.csv")["text"].to_pylist()[-1] == "café crème"


def test_added_columns_never_overwrite_the_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("text,label\na lovely film,positive\n")
    code = classify(source, "-o", tmp_path / "out.csv")
    assert_failed_cleanly(capsys, code, tmp_path, "'label'", "--prefix")
    assert classify(source, "-o", tmp_path / "out.csv", "--prefix", "predicted_") == 0
    out = read_output(tmp_path / "out.csv")
    assert out.column_names[:3] == ["text", "label", "predicted_label"]
    assert out["predicted_label"].to_pylist() == ["positive"]


def test_the_input_is_never_the_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_table(table_of(["a film"]), tmp_path / "in.csv")
    code = classify(source, "-o", source)
    err = capsys.readouterr().err
    assert code == 1 and "is the input file" in err
    assert source.read_text().startswith('"id","text","note"')


def test_a_model_of_a_repository_is_the_version_the_service_would_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repository = make_repository(tmp_path / "repo", {"tiny": [1, 2]})
    source = write_table(table_of(["funny", "a dull film"]), tmp_path / "in.csv")

    def scores(*model: str) -> list[float]:
        args = [source, "-o", tmp_path / "out.csv", "--no-progress", "--repository", repository]
        assert main([str(a) for a in [*args, *model]]) == 0, capsys.readouterr().err
        return [row["score"] for row in read_output(tmp_path / "out.csv").to_pylist()]

    latest = scores("--model", "tiny")
    assert scores("--model", "tiny:2") == latest
    assert scores("--model", "tiny:1") != latest  # another version, other weights
    assert main([str(source), "-o", str(tmp_path / "x.csv"), "--repository", str(repository),
                 "--model", "tiny:9"]) == 1  # fmt: skip
    assert "no version 9" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
