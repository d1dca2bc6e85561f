"""Writing the scored rows as they come, under a temporary name that becomes the output's only
once every row is written: a run that fails or is stopped leaves nothing that looks complete."""

import contextlib
import os
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from app.bulk.formats import FileError, arrow_problem, compression_of


def _json_default(value: Any) -> str:
    # Decimals, bytes and the like, which JSON has no type for: as their text.
    return str(value)


class Sink:
    """An output file being written: write() each batch, then commit() or abort()."""

    def __init__(self, path: Path, file_fmt: str, schema: pa.Schema) -> None:
        self.path = path
        self.format = file_fmt
        # Beside the output (so the final rename stays on one file system), hidden, and named
        # for what it is.
        self.partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        self._writer: Any = None
        self._stream: pa.NativeFile | None = None
        try:
            self._open(schema)
        except (pa.ArrowException, OSError) as exc:
            self.abort()
            raise FileError(path, arrow_problem(exc)) from exc

    def _open(self, schema: pa.Schema) -> None:
        if self.format == "parquet":
            self._writer = pq.ParquetWriter(str(self.partial), schema)
            return
        codec = compression_of(self.path)
        stream = pa.OSFile(str(self.partial), "wb")
        self._stream = pa.CompressedOutputStream(stream, codec) if codec else stream
        if self.format == "csv":
            self._writer = pa_csv.CSVWriter(self._stream, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        try:
            if self.format == "jsonl":
                assert self._stream is not None
                option = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
                self._stream.write(
                    b"".join(
                        orjson.dumps(row, default=_json_default, option=option)
                        for row in batch.to_pylist()
                    )
                )
            else:
                self._writer.write_batch(batch)
        except (pa.ArrowException, OSError) as exc:
            problem = f"cannot be written as {self.format}: {arrow_problem(exc)}"
            raise FileError(self.path, problem) from exc

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def commit(self) -> None:
        try:
            self._close()
            os.replace(self.partial, self.path)
        except (pa.ArrowException, OSError) as exc:
            self.abort()
            raise FileError(self.path, arrow_problem(exc)) from exc

    def abort(self) -> None:
        with contextlib.suppress(pa.ArrowException, OSError):  # the partial file goes anyway
            self._close()
        self.partial.unlink(missing_ok=True)
