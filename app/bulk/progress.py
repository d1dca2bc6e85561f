"""The progress line on stderr: rows done, rows/s, and the share done and ETA where the size is
known (Parquet by its row count, CSV and JSON lines by the bytes of the file read so far).

Redrawn in place on a terminal a few times a second; anywhere else (a log file, CI) one line every
LOG_EVERY_S seconds, so a long run's log shows it is alive without filling up.
"""

import time
from collections.abc import Callable
from typing import TextIO

REDRAW_EVERY_S = 0.25
LOG_EVERY_S = 30.0


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(
        self,
        stream: TextIO,
        total_rows: int | None = None,
        total_bytes: int | None = None,
        position: Callable[[], int] | None = None,
        enabled: bool = True,
    ) -> None:
        self.stream = stream
        self.total_rows = total_rows
        self.total_bytes = total_bytes if position is not None else None
        self.position = position
        self.enabled = enabled
        self.tty = enabled and stream.isatty()
        self.started = time.monotonic()
        self._shown_at = self.started
        self._drawn = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _done_share(self, rows: int) -> float | None:
        if self.total_rows:
            return min(1.0, rows / self.total_rows)
        if self.total_bytes and self.position is not None:
            return min(1.0, self.position() / self.total_bytes)
        return None

    def line(self, rows: int) -> str:
        elapsed = max(self.elapsed(), 1e-9)
        parts = [f"{rows:,} rows", f"{rows / elapsed:,.0f} rows/s", f"elapsed {_duration(elapsed)}"]
        share = self._done_share(rows)
        if share is not None:
            parts.insert(0, f"{share * 100:3.0f}%")
            if share > 0:
                parts.append(f"ETA {_duration(elapsed / share - elapsed)}")
        return "  ".join(parts)

    def __call__(self, rows: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._shown_at < (REDRAW_EVERY_S if self.tty else LOG_EVERY_S):
            return
        self._shown_at = now
        if self.tty:
            self.stream.write("\r" + self.line(rows) + "\x1b[K")
            self._drawn = True
        else:
            self.stream.write(self.line(rows) + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """End the redrawn line, so what follows starts on a line of its own."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
