"""Reading CSV, JSON lines and Parquet files as a stream of record batches (pyarrow).

A file is never read whole: CSV and JSON lines arrive in blocks of READ_BLOCK_BYTES, Parquet a
batch at a time within its row groups, so memory stays bounded whatever the file's size. Every
problem with a file (missing, unreadable, not the format it claims, a missing text column, bad
UTF-8) is a FileError: one line naming the file and what is wrong with it.
"""

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from app.bulk import records

FORMATS = ("csv", "jsonl", "parquet")
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
SUFFIXES[".pq"] = "parquet"
# CSV and JSON lines may be compressed; pyarrow's codec streams decompress them as they are read.
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}
# What is read, decoded and parsed at a time (a longer record still reads whole, app/bulk/records.py);
# one such piece and its table are all a read holds, nothing is read ahead.
READ_BLOCK_BYTES = 1 << 20
PARQUET_BATCH_ROWS = 8192


class FileError(Exception):
    """A file that cannot be read or written as asked: the message names it and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


class MissingColumn(FileError):
    """The file has no column of the name asked for."""


def arrow_problem(exc: BaseException) -> str:
    """The first line of what pyarrow (or the OS) said, which is the part a person needs."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, records.DecodeError):
        return str(exc)
    message = str(exc).strip().splitlines()
    text = message[0] if message else type(exc).__name__
    if any(sign in text.lower() for sign in ("invalid utf8", "invalid encoding", "utf-8")):
        return f"not valid UTF-8 text ({text})"
    return text


def compression_of(path: Path) -> str | None:
    return COMPRESSIONS.get(path.suffix.lower())


def file_format(path: Path, override: str | None) -> str:
    """The format named by --format, or by the file's extension (under any compression one)."""
    if override:
        return override
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    found = SUFFIXES.get(suffixes[-1]) if suffixes else None
    if found is None:
        known = ", ".join(SUFFIXES)
        raise FileError(path, f"unknown format (extensions: {known}); pass --format")
    return found


@dataclass
class Source:
    """An open input: its schema (every column, in file order), what is known of its size, and
    its batches. `position` tells how many bytes of the file are read (for the ETA), if known."""

    path: Path
    format: str
    schema: pa.Schema
    total_rows: int | None
    total_bytes: int | None
    position: Callable[[], int] | None
    _batches: Iterator[pa.RecordBatch]
    _close: Callable[[], None]

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._batches
        except (pa.ArrowException, OSError, records.DecodeError) as exc:
            raise FileError(self.path, arrow_problem(exc)) from exc

    def close(self) -> None:
        self._close()


def open_source(path: Path, file_fmt: str, text_column: str, encoding: str = "utf8") -> Source:
    """Open `path` for streaming; FileError if it cannot be read or lacks `text_column`."""
    if not path.is_file():
        raise FileError(path, "no such file" if not path.exists() else "not a file")
    try:
        if file_fmt == "csv":
            source = _open_csv(path, encoding)
        elif file_fmt == "jsonl":
            source = _open_jsonl(path, text_column)
        else:
            source = _open_parquet(path)
    except (pa.ArrowException, OSError) as exc:
        raise FileError(path, arrow_problem(exc)) from exc
    _check_text_column(source, text_column)
    return source


def _check_text_column(source: Source, text_column: str) -> None:
    names = source.schema.names
    if text_column not in names:
        source.close()
        shown = ", ".join(repr(name) for name in names[:20])
        raise MissingColumn(
            source.path, f"no column {text_column!r} (columns: {shown}); pass --text-column"
        )
    kind = source.schema.field(text_column).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
        source.close()
        raise FileError(source.path, f"column {text_column!r} holds {kind}, not text")


def _raw(path: Path) -> tuple[pa.NativeFile, pa.NativeFile]:
    """The file, and the stream to parse (decompressed when the extension says so)."""
    raw = pa.OSFile(str(path))
    codec = compression_of(path)
    return raw, pa.CompressedInputStream(raw, codec) if codec else raw


def _open_csv(path: Path, encoding: str) -> Source:
    try:
        decode = records.utf8_decoder(encoding)
    except LookupError:
        raise FileError(path, f"unknown text encoding {encoding!r}") from None
    raw, stream = _raw(path)
    try:
        pieces = records.whole_records(stream, READ_BLOCK_BYTES, records.csv_records_end, decode)
        first = next(pieces, b"")
        header = records.CSV_RECORD.match(first)
        header_end = header.end() if header else len(first)
        names = pa_csv.read_csv(pa.py_buffer(first[:header_end])).column_names
    except records.DecodeError as exc:
        raw.close()
        raise FileError(path, str(exc)) from exc
    except BaseException:
        raw.close()
        raise
    # Every column read as text, so what is written back is what was there ("007" stays "007").
    schema = pa.schema([(name, pa.string()) for name in names])
    rest = itertools.chain([first[header_end:]], pieces)
    size = path.stat().st_size
    return Source(path, "csv", schema, None, size, raw.tell, _csv_batches(rest, schema), raw.close)


def _csv_batches(pieces: Iterator[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    read = pa_csv.ReadOptions(column_names=schema.names, use_threads=False)
    # Quoted values may hold line breaks (multi-line reviews, tickets).
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    types = {field.name: field.type for field in schema}
    convert = pa_csv.ConvertOptions(column_types=types, strings_can_be_null=False)
    rows_before = 1  # the header: pyarrow would number this file's rows from it
    for piece in pieces:
        if not piece.strip():
            continue
        read.block_size = len(piece)  # one block: the piece is already whole records
        try:
            table = pa_csv.read_csv(pa.py_buffer(piece), read, parse, convert)
        except pa.ArrowInvalid as exc:
            raise pa.ArrowInvalid(_renumbered(str(exc), rows_before)) from exc
        rows_before += table.num_rows
        yield from table.to_batches()


def _renumbered(message: str, rows_before: int) -> str:
    """pyarrow's 'Row #N' counts from the piece it parsed: count from the file's start."""
    return re.sub(r"Row #(\d+)", lambda m: f"Row #{rows_before + int(m.group(1))}", message)


def _first_record(path: Path) -> dict[str, object]:
    """The first line's object: JSON lines has no header, so its keys name the columns."""
    raw, stream = _raw(path)
    head = b""
    try:  # up to the end of the first line that is not blank, or one block
        while len(head) < READ_BLOCK_BYTES and b"\n" not in head.lstrip():
            piece = stream.read(1 << 16)
            if not piece:
                break
            head += piece
    finally:
        raw.close()
    line = head.lstrip().split(b"\n", 1)[0]
    if not line.strip():
        raise FileError(path, "empty file (no JSON lines)")
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise FileError(path, f"the first line is not JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise FileError(path, "the first line is not a JSON object")
    return record


def _open_jsonl(path: Path, text_column: str) -> Source:
    keys = list(_first_record(path))
    if text_column not in keys:
        shown = ", ".join(repr(key) for key in keys[:20])
        raise MissingColumn(
            path, f"no column {text_column!r} (columns: {shown}); pass --text-column"
        )
    raw, stream = _raw(path)
    pieces = records.whole_records(stream, READ_BLOCK_BYTES, records.json_lines_end, None)
    try:
        first = _json_table(next(pieces, b""), pa.schema([(text_column, pa.string())]), "infer")
    except BaseException:
        raw.close()
        raise
    # The explicit field comes first in pyarrow's schema: put the columns back in file order.
    names = first.schema.names
    order = [name for name in keys if name in names] + [n for n in names if n not in keys]
    schema = first.schema
    # Later pieces keep the first one's fields and types, as pyarrow's streaming reader does.
    tables = itertools.chain(
        [first], (_json_table(piece, schema, "error") for piece in pieces if piece.strip())
    )
    batches = (batch.select(order) for table in tables for batch in table.to_batches())
    size = path.stat().st_size
    ordered = pa.schema([schema.field(name) for name in order])
    return Source(path, "jsonl", ordered, None, size, raw.tell, batches, raw.close)


def _json_table(piece: bytes, schema: pa.Schema, unexpected: str) -> pa.Table:
    read = pa_json.ReadOptions(use_threads=False, block_size=max(len(piece), 1))
    parse = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior=unexpected)
    table = pa_json.read_json(pa.py_buffer(piece), read, parse)
    table.validate(full=True)  # pyarrow's JSON parser copies bytes that are not UTF-8 as they are
    return table


def _open_parquet(path: Path) -> Source:
    # pre_buffer off: on, pyarrow reads ahead every row group the iterator will need (50 MB of a
    # 75 MB file held at once, growing with the file).
    file = pq.ParquetFile(str(path), pre_buffer=False)
    rows = file.metadata.num_rows
    # One thread: no decoding outlives a read that failed or stopped early.
    batches = file.iter_batches(batch_size=PARQUET_BATCH_ROWS, use_threads=False)
    return Source(path, "parquet", file.schema_arrow, rows, None, None, batches, file.close)
