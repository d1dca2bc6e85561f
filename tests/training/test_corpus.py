"""The streamed reading and the compact corpus: the same examples, split, vocabulary and batches
as the list-based pipeline they replace, from CSV, JSONL and Parquet, in bounded memory."""

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from app.core.network import collate
from app.core.tokenizer import Tokenizer
from training.corpus import Corpus
from training.data import BUNDLED_DATA, Example, load_examples, split_examples
from training.ingest import ingest

ROWS = [
    {"text": "A fine film", "label": "pos"},
    {"text": "  a FINE   film ", "label": "neg"},  # the same text normalized: dropped
    {"text": "dull,\nso dull", "label": "neg"},  # a line break inside a quoted CSV value
    {"text": "   ", "label": "pos"},  # empty once normalized: dropped
    {"text": "007 is back", "label": "007"},  # CSV values stay text: "007", not 7
]
EXPECTED = [Example("A fine film", "pos"), Example("dull,\nso dull", "neg")]
EXPECTED.append(Example("007 is back", "007"))


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    table = pa.Table.from_pylist(rows)
    if path.suffix == ".parquet":
        pq.write_table(table, path, row_group_size=2)  # several row groups, several batches
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:
        pa_csv.write_csv(table, path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_every_format_reads_the_same_unique_examples(tmp_path: Path, suffix: str) -> None:
    assert load_examples(write(tmp_path / f"data{suffix}", ROWS)) == EXPECTED


def test_non_text_labels_read_as_python_writes_them(tmp_path: Path) -> None:
    rows = [{"body": "good", "stars": 5}, {"body": "bad", "stars": 1}]
    path = write(tmp_path / "stars.parquet", rows)  # type: ignore[arg-type]
    assert load_examples(path, "body", "stars") == [Example("good", "5"), Example("bad", "1")]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_missing_column_is_reported(tmp_path: Path, suffix: str) -> None:
    path = write(
        tmp_path / f"data{suffix}", [{"text": "a", "stars": "1"}, {"text": "b", "stars": "2"}]
    )
    with pytest.raises(ValueError, match="lacks column 'text' or 'label'"):
        load_examples(path)
    with pytest.raises(ValueError, match="lacks column 'review' or 'stars'"):
        load_examples(path, "review", "stars")


def test_a_single_label_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "one.parquet", [{"text": "a", "label": "x"}, {"text": "b", "label": "x"}]
    )
    with pytest.raises(ValueError, match="need at least 2 distinct labels"):
        load_examples(path)


def test_a_bad_file_is_a_value_error_naming_it(tmp_path: Path) -> None:
    parquet = tmp_path / "broken.parquet"
    parquet.write_bytes(b"PAR1 this is no parquet file")
    with pytest.raises(ValueError, match=r"broken\.parquet"):
        load_examples(parquet)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\nfine,pos\ntoo,many,fields\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"ragged\.csv"):
        load_examples(ragged)


def test_ingest_matches_the_list_based_pipeline_on_the_bundled_reviews() -> None:
    limit, max_length, min_freq = 1500, 12, 2
    splits = split_examples(load_examples(BUNDLED_DATA)[:limit])
    labels = sorted({e.label for split in splits.values() for e in split})
    tokenizer = Tokenizer.build((e.text for e in splits["train"]), min_freq)
    read = ingest(BUNDLED_DATA, "text", "label", limit, min_freq, max_length)
    assert read.tokenizer.tokens == tokenizer.tokens
    assert read.labels == labels
    for name, examples in splits.items():
        assert list(read.splits[name]) == examples
        corpus = read.encoded[name]
        assert [corpus.sequence(i) for i in range(len(corpus))] == [
            tokenizer.encode(e.text, max_length).ids for e in examples
        ]
        assert corpus.labels.tolist() == [labels.index(e.label) for e in examples]


def test_a_batch_is_the_services_padding_of_the_chosen_texts() -> None:
    rng = random.Random(3)
    sequences = [[rng.randrange(2, 500) for _ in range(rng.randint(1, 30))] for _ in range(200)]
    labels = [rng.randrange(3) for _ in sequences]
    corpus = Corpus.of(sequences, labels)
    assert len(corpus) == 200
    assert corpus.lengths.tolist() == [len(s) for s in sequences]
    for chosen in ([7], [5, 5, 199, 0], rng.sample(range(200), 64), range(190, 200)):
        ids, lengths, targets = corpus.batch(chosen)
        want_ids, want_lengths = collate([sequences[i] for i in chosen])
        assert ids.dtype == want_ids.dtype and ids.equal(want_ids)
        assert lengths.dtype == want_lengths.dtype and lengths.equal(want_lengths)
        assert targets.tolist() == [labels[i] for i in chosen]


# Run in a fresh interpreter, whose peak RSS before reading is its imports alone: VmHWM, as
# ru_maxrss would carry over the peak of the process that started it (it survives exec).
MEASURE = """
import json, sys
from pathlib import Path
from training.ingest import ingest

def peak() -> int:
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM:"))

before = peak()
read = ingest(Path(sys.argv[1]), "text", "label", None, 1, 40)
print(json.dumps({"texts": read.examples, "growth": peak() - before}))
"""
TEXTS = 200_000
# Held per text: its UTF-8 (130 bytes here), 20 int32 ids, offsets, label, its digest in the
# dedup set, and the buffers' growth: 600 bytes measured. The list-based pipeline this replaced
# held 780 a text on the same file.
BYTES_PER_TEXT = 800
SLACK_BYTES = 20e6  # arrow's read blocks and allocator noise, whatever the size


def test_reading_holds_a_bounded_number_of_bytes_per_text(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    words = rng.integers(0, 20_000, (TEXTS, 20))
    texts = [" ".join(f"w{w}" for w in row) for row in words]
    labels = rng.choice(["pos", "neg"], TEXTS).tolist()
    path = tmp_path / "large.csv"
    pa_csv.write_csv(pa.table({"text": texts, "label": labels}), path)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, check=True
    )
    measured = json.loads(done.stdout)
    assert measured["texts"] == TEXTS
    assert measured["growth"] < TEXTS * BYTES_PER_TEXT + SLACK_BYTES
