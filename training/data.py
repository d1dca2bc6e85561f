"""Labelled texts from CSV or JSONL, and the fixed hash split every reported number uses."""

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

BUNDLED_DATA = Path(__file__).resolve().parent.parent / "data" / "rotten_tomatoes.csv"


@dataclass(frozen=True)
class Example:
    text: str
    label: str


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def split_of(text: str) -> str:
    """bucket 0 = test, 1 = validation, 2..9 = train, by sha256 of the normalized text."""
    bucket = int(hashlib.sha256(normalize(text).encode()).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def load_examples(
    path: Path, text_column: str = "text", label_column: str = "label"
) -> list[Example]:
    """Rows of a .csv (header row) or .jsonl file; empty texts and duplicate texts are dropped."""
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
    else:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    examples: list[Example] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        if text_column not in row or label_column not in row:
            raise ValueError(
                f"{path}: row {number} lacks column {text_column!r} or {label_column!r}"
            )
        text, label = str(row[text_column]), str(row[label_column])
        norm = normalize(text)
        if norm and norm not in seen:
            seen.add(norm)
            examples.append(Example(text, label))
    if len({e.label for e in examples}) < 2:
        raise ValueError(f"{path}: need at least 2 distinct labels")
    return examples


def file_sha256(path: Path) -> str:
    """Of the file's bytes, read in chunks (a data file may be larger than memory)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def split_examples(examples: list[Example]) -> dict[str, list[Example]]:
    splits: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    for example in examples:
        splits[split_of(example.text)].append(example)
    return splits
