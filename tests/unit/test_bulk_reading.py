"""Reading CSV and JSON lines is the same every time: every encoding, compression and block
boundary gives the rows an independent parser finds, and a failed read changes nothing after it,
in the same process or at its exit."""

import bz2
import csv
import gzip
import hashlib
import io
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from app.bulk import formats
from app.bulk.formats import FileError, open_source
from tests.support.artifacts import ROOT

ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "iso-8859-15", "utf-16", "gb18030"]
# A block of 7 bytes puts a boundary inside nearly every record, quote and multi-byte character.
BLOCKS = [7, 64, 1000, formats.READ_BLOCK_BYTES]
COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".zst": lambda data: _codec_compress(data, "zstd"),
    ".lz4": lambda data: _codec_compress(data, "lz4"),
}


def _codec_compress(data: bytes, codec: str) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, codec) as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


WORDS = ["a", "fine", "film", "naïve", "café", "€5", "\u2013", "日本", "😀", '5" screen', "x,y"]


def _words(encoding: str) -> list[str]:
    """The words that `encoding` can write: accents, the euro sign, CJK and emoji where it can."""
    return [word for word in WORDS if _encodable(word, encoding)]


def _encodable(word: str, encoding: str) -> bool:
    try:
        word.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _field(rng: random.Random, words: list[str]) -> str:
    """One CSV field as a person's file may hold it: plain, or quoted with commas, quotes and
    line breaks inside (a plain field keeps any stray quote literal, as Excel writes it)."""
    text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 8)))
    if rng.random() < 0.5 or "," in text or text.startswith('"'):
        inner = text + rng.choice(["", "\nsecond line", "\r\nand a third", ' "quoted"'])
        return '"' + inner.replace('"', '""') + '"'
    return text


def csv_text(encoding: str, rows: int = 60, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = _words(encoding)
    end = rng.choice(["\n", "\r\n"])
    lines = ["id,text,note"] + [
        f"{i},{_field(rng, words)},{_field(rng, words)}" for i in range(rows)
    ]
    return end.join(lines) + rng.choice(["", end])


def expected_rows(text: str) -> list[list[str]]:
    """Python's csv module on the whole text: a second parser, independent of pyarrow."""
    return [row for row in csv.reader(io.StringIO(text, newline="")) if row]


def read_rows(path: Path, encoding: str = "utf8", fmt: str = "csv") -> list[list[str]]:
    source = open_source(path, fmt, "text", encoding)
    try:
        table = pa.Table.from_batches(list(source.batches()), source.schema)
    finally:
        source.close()
    return [table.schema.names] + [list(map(str, row.values())) for row in table.to_pylist()]


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_and_block_size_reads_the_rows_a_second_parser_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str, block: int
) -> None:
    monkeypatch.setattr(formats, "READ_BLOCK_BYTES", block)
    for seed in range(3):
        text = csv_text(encoding, seed=seed)
        path = tmp_path / f"in{seed}.csv"
        path.write_bytes(text.encode(encoding))
        assert read_rows(path, encoding) == expected_rows(text)


@pytest.mark.parametrize("suffix", list(COMPRESS))
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_compressed_files_read_as_their_plain_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, encoding: str
) -> None:
    monkeypatch.setattr(formats, "READ_BLOCK_BYTES", 64)
    text = csv_text(encoding, rows=200)
    path = tmp_path / f"in.csv{suffix}"
    path.write_bytes(COMPRESS[suffix](text.encode(encoding)))
    assert read_rows(path, encoding) == expected_rows(text)


def test_a_record_longer_than_many_blocks_reads_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "READ_BLOCK_BYTES", 16)
    text = 'id,text\n1,"' + "a long review,\nwith line breaks\n" * 500 + '"\n2,short\n'
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    assert read_rows(path) == expected_rows(text)


BAD_BYTES = {"utf8": b"\xff", "cp1252": b"\x81"}  # no character in either encoding


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("encoding", list(BAD_BYTES))
def test_a_bad_byte_in_any_block_fails_and_the_next_read_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str, where: str
) -> None:
    monkeypatch.setattr(formats, "READ_BLOCK_BYTES", 256)
    text = csv_text("latin-1", rows=100)
    good = tmp_path / "good.csv"
    good.write_bytes(text.encode(encoding))
    row = {"first": 0, "middle": 50, "last": 99}[where]
    start = f"\n{row},".encode()  # the id field of that row: its quoting stays as it was
    bad = tmp_path / "bad.csv"
    bad.write_bytes(good.read_bytes().replace(start, start[:-1] + BAD_BYTES[encoding] + b",", 1))
    expected = expected_rows(text)
    for _ in range(5):  # the failure leaves nothing behind that a later read would see
        with pytest.raises(FileError, match="not valid"):
            read_rows(bad, encoding)
        assert read_rows(good, encoding) == expected


def test_a_bad_row_is_named_by_its_row_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "READ_BLOCK_BYTES", 64)
    rows = [f"{i},a fine film number {i}" for i in range(40)]
    rows[30] += ",an extra column"
    path = tmp_path / "in.csv"
    path.write_text("id,text\n" + "\n".join(rows) + "\n")
    with pytest.raises(FileError, match=r"Row #32: Expected 2 columns, got 3"):
        read_rows(path)


def test_an_unknown_encoding_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("text\na film\n")
    with pytest.raises(FileError, match="unknown text encoding 'klingon'"):
        read_rows(path, "klingon")


def jsonl_bytes(rows: int = 80, seed: int = 0) -> tuple[bytes, list[list[str]]]:
    rng = random.Random(seed)
    words = [*WORDS, "line\nbreak", "tab\there", 'said "hi"']
    records = [
        {"id": i, "text": " ".join(rng.choice(words) for _ in range(rng.randint(0, 6)))}
        for i in range(rows)
    ]
    data = b"".join(orjson.dumps(record) + rng.choice([b"\n", b"\r\n"]) for record in records)
    return data, [["id", "text"]] + [[str(r["id"]), r["text"]] for r in records]


@pytest.mark.parametrize("block", BLOCKS)
def test_json_lines_read_the_same_at_every_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(formats, "READ_BLOCK_BYTES", block)
    data, rows = jsonl_bytes()
    path = tmp_path / "in.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    assert read_rows(path, fmt="jsonl") == rows


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_json_lines_with_a_bad_byte_fail_and_the_next_read_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.setattr(formats, "READ_BLOCK_BYTES", 256)
    data, rows = jsonl_bytes()
    good = tmp_path / "good.jsonl"
    good.write_bytes(data)
    lines = data.split(b"\n")
    at = {"first": 1, "middle": len(lines) // 2, "last": len(lines) - 2}[where]
    lines[at] = lines[at].replace(b'"text":"', b'"text":"\xff', 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(lines))
    for _ in range(5):
        with pytest.raises(FileError, match="UTF"):
            read_rows(bad, fmt="jsonl")
        assert read_rows(good, fmt="jsonl") == rows


# Each fresh interpreter reads a file that fails as UTF-8 and then reads it as latin-1, as a user
# retrying with --encoding does, and prints what it read; exiting is part of the check (a reader
# still running at exit once hung the process).
FRESH_READ = """
import hashlib, sys
from pathlib import Path
from app.bulk.formats import FileError, open_source

path = Path(sys.argv[1])
source = open_source(path, "csv", "text", "utf8")
try:
    list(source.batches())
    raise SystemExit("read as UTF-8")
except FileError as exc:
    assert "not valid UTF-8" in str(exc), exc
finally:
    source.close()
source = open_source(path, "csv", "text", "latin-1")
digest = hashlib.sha256()
for batch in source.batches():
    for text in batch.column("text").to_pylist():
        digest.update(text.encode() + b"\\0")
source.close()
print(digest.hexdigest())
"""


def test_a_non_utf8_file_reads_the_same_in_every_fresh_interpreter(tmp_path: Path) -> None:
    pad = "p" * 2000  # 6 MB in 3,000 rows: several blocks are read before the bad byte
    good = "".join(f"{i},{pad},a fine film number {i}\n" for i in range(3000))
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,pad,text\n" + good.encode() + b"99,p,caf\xe9 cr\xe8me\n")
    digest = hashlib.sha256()
    for i in range(3000):
        digest.update(f"a fine film number {i}".encode() + b"\0")
    digest.update("café crème".encode() + b"\0")
    for _ in range(8):
        # The timeout only turns a hang into a failure; no duration is asserted.
        run = subprocess.run(
            [sys.executable, "-c", FRESH_READ, str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == digest.hexdigest()
