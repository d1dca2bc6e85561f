"""Cutting a text file into whole records, read and decoded in the caller's thread.

pyarrow's streaming CSV and JSON readers read ahead on a background thread that outlives a
failed or abandoned read: closing the file under it let that thread read from the next file
opened on the same descriptor number (a second read of the same CSV began mid-file), and a
non-UTF-8 encoding ran Python's codec on that thread, which hung the process at exit (Arrow
issues 43604 and 43892). So the file is read here, synchronously, and pyarrow only parses
pieces that are already in memory: nothing reads the file once a read has returned or failed.
"""

import codecs
import re
from collections.abc import Callable, Iterator

import pyarrow as pa

# One CSV record as Arrow's chunker delimits it: quoting is recognised only at the start of a
# field, "" inside quotes is a quote, a closing quote returns to plain text up to the next comma
# or line break, and a line ends at \n, \r or \r\n. The quoted part is atomic so that a record cut
# off inside its quotes can never be re-read as complete by backtracking.
_FIELD = rb'(?:"(?>[^"]*(?:""[^"]*)*)"[^,\r\n]*|[^",\r\n][^,\r\n]*|)'
CSV_RECORD = re.compile(rb"%s(?:,%s)*(?:\r\n?|\n)" % (_FIELD, _FIELD))
_CSV_RECORDS = re.compile(rb"(?:%s)*" % CSV_RECORD.pattern)


def csv_records_end(data: bytes) -> int:
    """Where the last complete CSV record of `data` (which starts at a record) ends."""
    match = _CSV_RECORDS.match(data)
    return match.end() if match else 0


def json_lines_end(data: bytes) -> int:
    """Where the last complete JSON line of `data` ends: a JSON value never holds a raw \\n."""
    return data.rfind(b"\n") + 1


class DecodeError(Exception):
    """Bytes that are not text in the file's encoding; `offset` counts from the file's start."""

    def __init__(self, encoding: str, offset: int, reason: str) -> None:
        super().__init__(f"not valid {encoding} text near byte {offset} ({reason})")


def utf8_decoder(encoding: str) -> Callable[[bytes, bool], bytes] | None:
    """A function turning the file's bytes into UTF-8, piece by piece; None when they already
    are (pyarrow checks UTF-8 itself, faster). LookupError for an unknown encoding."""
    name = codecs.lookup(encoding).name
    if name == "utf-8":
        return None
    decoder = codecs.getincrementaldecoder(name)(errors="strict")
    seen = 0

    def decode(piece: bytes, final: bool) -> bytes:
        nonlocal seen
        try:
            text = decoder.decode(piece, final)
        except UnicodeDecodeError as exc:
            raise DecodeError(name, seen + exc.start, exc.reason) from exc
        seen += len(piece)
        return text.encode("utf-8")

    return decode


def whole_records(
    stream: pa.NativeFile,
    block_bytes: int,
    records_end: Callable[[bytes], int],
    decode: Callable[[bytes, bool], bytes] | None,
) -> Iterator[bytes]:
    """The stream's UTF-8 text in pieces of about `block_bytes`, each ending where a record ends
    (the last piece at the end of the file, whatever is there)."""
    carry = b""
    size = block_bytes
    while True:
        piece = stream.read(size)
        data = carry + (decode(piece, not piece) if decode else piece)
        if not piece:
            if data:
                yield data
            return
        end = records_end(data)
        if end:
            yield data[:end]
            size = block_bytes
        else:  # a record longer than what is held: read more at a time, not rescan per block
            size *= 2
        carry = data[end:]
