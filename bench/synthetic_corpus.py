"""A large labelled data set, made deterministically (never downloaded), for training at scale.

python bench/synthetic_corpus.py /tmp/million.csv                 # 1,000,000 texts of 20 words
python bench/synthetic_corpus.py /tmp/small.parquet --texts 10000  # .csv, .jsonl or .parquet

Words are the bundled reviews' vocabulary, drawn from a Zipf-like distribution that each label
tilts: a word's weight is multiplied by exp(+-TILT * its polarity), with a random polarity for a
share of the words, so a text's label shows in which words it uses, as in reviews, and must be
learnt from many weak cues. Written a chunk at a time, so memory stays flat whatever --texts.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from app.core.tokenizer import Tokenizer
from training.data import BUNDLED_DATA, load_examples

LABELS = ("negative", "positive")
TILT = 1.0
POLAR_SHARE = 0.3  # of the words, the ones whose weight depends on the label
CHUNK = 100_000


def word_weights(words: int, rng: np.random.Generator) -> np.ndarray:
    """[labels, words] probabilities: Zipf by frequency rank, tilted per label."""
    base = 1.0 / np.arange(1, words + 1)
    polarity = np.where(rng.random(words) < POLAR_SHARE, rng.choice([-1.0, 1.0], words), 0.0)
    tilted = np.stack([base * np.exp(-TILT * polarity), base * np.exp(TILT * polarity)])
    return tilted / tilted.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def write(path: Path, texts: int, length: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    vocabulary = np.array(Tokenizer.build(e.text for e in load_examples(BUNDLED_DATA)).tokens[2:])
    weights = word_weights(len(vocabulary), rng)
    schema = pa.schema([("text", pa.string()), ("label", pa.string())])
    if path.suffix == ".parquet":
        writer: pq.ParquetWriter | pa_csv.CSVWriter | None = pq.ParquetWriter(str(path), schema)
    elif path.suffix == ".csv":
        writer = pa_csv.CSVWriter(str(path), schema)
    else:
        writer = None
        path.write_text("")
    for start in range(0, texts, CHUNK):
        size = min(CHUNK, texts - start)
        labels = rng.integers(0, len(LABELS), size)
        rows = np.empty((size, length), dtype=vocabulary.dtype)
        for label in range(len(LABELS)):
            chosen = labels == label
            picks = rng.choice(len(vocabulary), (int(chosen.sum()), length), p=weights[label])
            rows[chosen] = vocabulary[picks]
        table = pa.table(
            {"text": [" ".join(row) for row in rows], "label": [LABELS[i] for i in labels]},
            schema=schema,
        )
        if writer is None:
            with path.open("a", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in _json_lines(table))
        else:
            writer.write_table(table)
    if writer is not None:
        writer.close()


def _json_lines(table: pa.Table) -> list[str]:
    return [json.dumps(row) for row in table.to_pylist()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="a .csv, .jsonl or .parquet file to write")
    parser.add_argument("--texts", type=int, default=1_000_000)
    parser.add_argument("--words", type=int, default=20, help="words per text")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write(args.out, args.texts, args.words, args.seed)


if __name__ == "__main__":
    main()
