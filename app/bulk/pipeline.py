"""One bulk run on one machine: read chunks, score them (here, or in worker processes), write them
in input order, with a bounded number of chunks in memory at any time."""

import multiprocessing
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from app.bulk.scoring import Scorer, Scores
from app.bulk.workers import ScorerSpec, ready, score_in_worker, start_worker

# Rows scored together: sorted by length inside a chunk, and the unit handed to a worker. Large
# enough that batches of similar length form and a worker's round trip is cheap next to its work,
# small enough that workers x in-flight chunks stay a few MB.
CHUNK_ROWS = 8192
# Chunks queued per worker: one computing, one ready for when it finishes.
IN_FLIGHT_PER_WORKER = 2


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
            workers, context, initializer=start_worker, initargs=(spec, barrier)
        )
        try:
            # One task each spawns every worker (they start on demand); none runs before all
            # have passed the barrier, so the first answer means all are up.
            for future in [self.pool.submit(ready) for _ in range(workers)]:
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
                pending.append((part, self.pool.submit(score_in_worker, texts)))
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
