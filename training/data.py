"""Labelled texts from CSV, JSONL or Parquet, streamed in record batches (pyarrow, through the
bulk classifier's readers, app/bulk/formats.py), and the fixed hash split every reported number
uses."""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.bulk.formats import FileError, MissingColumn, file_format, open_source

BUNDLED_DATA = Path(__file__).resolve().parent.parent / "data" / "rotten_tomatoes.csv"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Example:
    text: str
    label: str


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def digest_of(text: str) -> bytes:
    """sha256 of the normalized text: what duplicates share, and what decides the split."""
    return hashlib.sha256(normalize(text).encode()).digest()


def split_of_digest(digest: bytes) -> str:
    """bucket 0 = test, 1 = validation, 2..9 = train, by the sha256 of the normalized text."""
    bucket = int.from_bytes(digest, "big") % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def split_of(text: str) -> str:
    return split_of_digest(digest_of(text))


def _format(path: Path) -> str:
    """By the extension; anything unknown is read as CSV, as it always was."""
    try:
        return file_format(path, None)
    except FileError:
        return "csv"


def read_rows(path: Path, text_column: str, label_column: str) -> Iterator[tuple[str, str]]:
    """(text, label) of every row, a record batch at a time (CSV values all read as text)."""
    missing = f"{path}: row 1 lacks column {text_column!r} or {label_column!r}"
    try:
        source = open_source(path, _format(path), text_column)
    except MissingColumn as exc:
        raise ValueError(f"{missing} ({exc.problem})") from exc
    except FileError as exc:
        raise ValueError(str(exc)) from exc
    try:
        if label_column not in source.schema.names:
            raise ValueError(missing)
        number = 0
        for batch in source.batches():
            texts = batch.column(text_column).to_pylist()
            labels = batch.column(label_column).to_pylist()
            for text, label in zip(texts, labels, strict=True):
                number += 1
                if text is None or label is None:
                    raise ValueError(
                        f"{path}: row {number} lacks column {text_column!r} or {label_column!r}"
                    )
                yield str(text), str(label)
    except FileError as exc:
        raise ValueError(str(exc)) from exc
    finally:
        source.close()


def unique_examples(
    path: Path, text_column: str, label_column: str
) -> Iterator[tuple[Example, bytes]]:
    """Rows with their text's digest; empty texts and duplicate texts are dropped. Only the
    digests seen are held (32 bytes a text), never the texts."""
    seen: set[bytes] = set()
    for text, label in read_rows(path, text_column, label_column):
        if not normalize(text):
            continue
        digest = digest_of(text)
        if digest not in seen:
            seen.add(digest)
            yield Example(text, label), digest


def load_examples(
    path: Path, text_column: str = "text", label_column: str = "label"
) -> list[Example]:
    """Every unique example of a file (small files: training streams, training/ingest.py)."""
    examples = [e for e, _ in unique_examples(path, text_column, label_column)]
    check_labels(path, {e.label for e in examples})
    return examples


def check_labels(path: Path, labels: set[str]) -> None:
    if len(labels) < 2:
        raise ValueError(f"{path}: need at least 2 distinct labels")


def file_sha256(path: Path) -> str:
    """Of the file's bytes, read in chunks (a data file may be larger than memory)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def split_examples(examples: list[Example]) -> dict[str, list[Example]]:
    splits: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for example in examples:
        splits[split_of(example.text)].append(example)
    return splits
