"""The progress line: rows, rows/s, and the share done and ETA when the size is known."""

import io

from app.bulk.pipeline import refusal_kind
from app.bulk.progress import Progress


def test_the_line_has_the_share_and_eta_when_the_row_count_is_known() -> None:
    progress = Progress(io.StringIO(), total_rows=200)
    line = progress.line(100)
    assert line.startswith(" 50%") and "100 rows" in line and "rows/s" in line and "ETA" in line


def test_bytes_read_give_the_share_of_a_csv_or_json_lines_file() -> None:
    progress = Progress(io.StringIO(), total_bytes=1000, position=lambda: 250)
    assert progress.line(10).startswith(" 25%")


def test_without_a_size_there_is_no_eta() -> None:
    line = Progress(io.StringIO()).line(10)
    assert "%" not in line and "ETA" not in line and "10 rows" in line


def test_off_a_terminal_it_writes_whole_lines_only_now_and_then() -> None:
    stream = io.StringIO()
    progress = Progress(stream, total_rows=10)
    progress(5)
    assert stream.getvalue() == ""  # the first line comes after LOG_EVERY_S
    progress._shown_at -= 60
    progress(5)
    assert stream.getvalue().endswith("\n") and "\r" not in stream.getvalue()


def test_refusals_are_counted_by_kind_without_their_numbers() -> None:
    assert refusal_kind("25000 characters, at most 20000") == "N characters, at most N"
