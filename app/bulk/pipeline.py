"""One bulk run on one machine: read chunks, score them (here, or in worker processes), write them
in input order, with a bounded number of chunks in memory at any time."""

import multiprocessing
import re
import signal
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from app.bulk.scoring import Scorer, Scores

# Rows scored together: sorted by length inside a chunk, and the unit handed to a worker. Large
# enough that batches of similar length form and a worker's round trip is cheap next to its work,
# small enough that workers x in-flight chunks stay a few MB.
CHUNK_ROWS = 8192
# Chunks queued per worker: one computing, one ready for when it finishes.
IN_FLIGHT_PER_WORKER = 2


@dataclass(frozen=True)
class ScorerSpec:
    """What a worker process needs to load its own scorer: paths and numbers, never the model."""

    model_dir: Path
    batch_size: int
    max_text_chars: int
    truncation: Literal["truncate", "reject"]

    def load(self) -> Scorer:
        return Scorer.load(self.model_dir, 1, self.batch_size, self.max_text_chars, self.truncation)


@dataclass
class Tally:
    """What the summary reports: rows, refusals by kind, answers per label."""

    labels: list[str]
    rows: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    per_label: Counter[str] = field(default_factory=Counter)

    def add(self, scores: Scores) -> None:
        self.rows += len(scores.best)
        counts = np.bincount(scores.best[~scores.refused], minlength=len(self.labels))
        self.per_label.update(dict(zip(self.labels, counts.tolist(), strict=True)))
        self.refused.update(refusal_kind(error) for error in scores.errors if error is not None)


def refusal_kind(error: str) -> str:
    """An error without its numbers, so refusals of one kind are counted together."""
    return re.sub(r"\d+", "N", error)


def chunks(batches: Iterable[pa.RecordBatch], rows: int = CHUNK_ROWS) -> Iterator[pa.RecordBatch]:
    """The batches cut to at most `rows` rows (zero-copy slices), skipping empty ones."""
    for batch in batches:
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)


# ---------------------------------------------------------------- worker processes

_worker_scorer: Scorer | None = None


def _start_worker(spec: ScorerSpec, barrier: Any) -> None:
    global _worker_scorer
    # Ctrl-C reaches the whole process group: the parent answers it and ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_scorer = spec.load()
    barrier.wait(timeout=300)  # every worker loaded before any takes work (WorkerPool)


def _ready() -> None:
    """A task that only proves its worker finished starting."""


def _score_in_worker(texts: list[object]) -> Scores:
    assert _worker_scorer is not None, "worker started without its scorer"
    return _worker_scorer.score(texts)


class WorkerDied(Exception):
    """A worker process ended mid-run (killed, out of memory)."""


def scored_inline(
    scorer: Scorer, parts: Iterable[pa.RecordBatch], text_column: str
) -> Iterator[tuple[pa.RecordBatch, Scores]]:
    for part in parts:
        yield part, scorer.score(part.column(text_column).to_pylist())


class WorkerPool:
    """`workers` scoring processes, each with its own model, all started (model loaded) when the
    constructor returns, so the run's clock counts scoring, not start-up."""

    def __init__(self, spec: ScorerSpec, workers: int) -> None:
        # spawn, not fork: the parent has pyarrow's thread pools running, which fork does not copy.
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(workers)
        self.workers = workers
        self.pool = ProcessPoolExecutor(
            workers, context, initializer=_start_worker, initargs=(spec, barrier)
        )
        try:
            # One task each spawns every worker (they start on demand); none runs before all
            # have passed the barrier, so the first answer means all are up.
            for future in [self.pool.submit(_ready) for _ in range(workers)]:
                future.result()
        except BrokenProcessPool as exc:
            self.close()
            raise WorkerDied(str(exc) or "a worker process could not start") from exc

    def scored(
        self, parts: Iterable[pa.RecordBatch], text_column: str
    ) -> Iterator[tuple[pa.RecordBatch, Scores]]:
        """Chunks scored by the workers, handed back in input order. At most
        IN_FLIGHT_PER_WORKER chunks per worker are read ahead, so memory does not grow with the
        file (Pool.imap would read the whole input ahead)."""
        pending: deque[tuple[pa.RecordBatch, Future[Scores]]] = deque()
        try:
            for part in parts:
                texts = part.column(text_column).to_pylist()
                pending.append((part, self.pool.submit(_score_in_worker, texts)))
                if len(pending) >= self.workers * IN_FLIGHT_PER_WORKER:
                    batch, future = pending.popleft()
                    yield batch, future.result()
            while pending:
                batch, future = pending.popleft()
                yield batch, future.result()
        except BrokenProcessPool as exc:
            raise WorkerDied(str(exc) or "a worker process ended unexpectedly") from exc

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def run(
    scored: Iterator[tuple[pa.RecordBatch, Scores]],
    write: Callable[[pa.RecordBatch, Scores], None],
    tally: Tally,
    progress: Callable[[int], None],
) -> Tally:
    """Write every scored chunk as it comes back, counting it."""
    for batch, scores in scored:
        write(batch, scores)
        tally.add(scores)
        progress(tally.rows)
    return tally
