"""Continuous batching across requests, TEI-style: no fixed window.

Whenever the model is free it takes what is queued (up to MAX_BATCH_SIZE texts and
MAX_BATCH_TOKENS padded tokens) and runs one forward pass. Requests count by texts, so a request
with many texts can span several batches and share them with others. The queue is bounded: past
it, callers get Overloaded at once instead of waiting. Texts of a client that has gone away are
dropped before they reach the model.

Where the forward pass runs depends on the CPUs a worker has:
- two or more (or a GPU): a dedicated thread (torch releases the GIL), so the event loop keeps
  parsing and validating HTTP while the model computes;
- exactly one: on the event loop itself, as a callback scheduled when work arrives. A thread
  cannot overlap anything on one core; it only adds two thread wake-ups per request, which the
  benchmark measured as a loss at every load (bench/README.md).
"""

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app import metrics

log = logging.getLogger(__name__)


class Overloaded(Exception):
    pass


class ClientGone(Exception):
    pass


class BatchFailed(Exception):
    def __init__(self, error_id: str) -> None:
        super().__init__(error_id)
        self.error_id = error_id


def never_gone() -> bool:
    return False


@dataclass(eq=False)
class _Job:
    """One request's texts; resolved on its event loop when the last of them is done."""

    sequences: list[list[int]]
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop
    enqueued_at: float
    remaining: int
    client_gone: Callable[[], bool]
    probabilities: np.ndarray | None = None
    outcome: np.ndarray | BaseException | None = field(default=None, repr=False)


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():  # cancelled meanwhile
            continue
        if isinstance(job.outcome, BaseException):
            job.future.set_exception(job.outcome)
        else:
            job.future.set_result(job.outcome)


class Batcher:
    def __init__(
        self,
        predict: Callable[[list[list[int]]], np.ndarray],
        max_batch_size: int,
        max_batch_tokens: int,
        max_queue_texts: int,
        max_wait_s: float = 0.0,
        on_event_loop: bool = False,
    ) -> None:
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_queue_texts = max_queue_texts
        self.max_wait_s = max_wait_s
        self.on_event_loop = on_event_loop
        self._queue: deque[tuple[_Job, int]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._flush_scheduled = False
        self._thread = threading.Thread(target=self._run_thread, name="model-runner", daemon=True)
        self._batches = 0

    def start(self) -> None:
        if not self.on_event_loop:
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Finish every queued text, then end the model thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def queued(self) -> int:
        return len(self._queue)

    async def submit(
        self, sequences: list[list[int]], client_gone: Callable[[], bool] = never_gone
    ) -> np.ndarray:
        """Probabilities for `sequences`, in order, computed alongside other requests' texts."""
        loop = asyncio.get_running_loop()
        job = _Job(sequences, loop.create_future(), loop, time.perf_counter(), len(sequences),
                   client_gone)  # fmt: skip
        with self._cond:
            if self._stopping:
                raise Overloaded("shutting down")
            if len(self._queue) + len(sequences) > self.max_queue_texts:
                raise Overloaded(f"{len(self._queue)} texts queued (limit {self.max_queue_texts})")
            # The depth gauge is set once per batch, in _take: not a lock per request.
            self._queue.extend((job, i) for i in range(len(sequences)))
            if not self.on_event_loop:
                self._cond.notify()
        if self.on_event_loop and not self._flush_scheduled:
            self._schedule_flush(loop)
        return await job.future

    def _take(self) -> list[tuple[_Job, int]]:
        """Pop the next batch, FIFO, within the size and padded-token budgets (at least one text)."""
        batch: list[tuple[_Job, int]] = []
        longest = 0
        dropped: list[_Job] = []
        while self._queue and len(batch) < self.max_batch_size:
            job, index = self._queue[0]
            if job.outcome is not None or job.future.done():  # answered or abandoned already
                self._queue.popleft()
                continue
            if job.client_gone():  # never reaches the model; its handler gets ClientGone
                self._queue.popleft()
                job.outcome = ClientGone()
                dropped.append(job)
                metrics.ABANDONED_TEXTS.inc(job.remaining)
                continue
            length = max(longest, len(job.sequences[index]))
            if batch and length * (len(batch) + 1) > self.max_batch_tokens:
                break
            batch.append(self._queue.popleft())
            longest = length
        metrics.QUEUE_DEPTH.set(len(self._queue))
        if dropped:
            self._deliver(dropped)
        return batch

    def _run_thread(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                if self.max_wait_s and len(self._queue) < self.max_batch_size:
                    self._cond.wait(self.max_wait_s)
                batch = self._take()
            if batch:
                self._deliver(self._run_batch(batch))

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush_scheduled = True
        if self.max_wait_s and len(self._queue) < self.max_batch_size:
            loop.call_later(self.max_wait_s, self._flush, loop)
        else:
            # After the callbacks already ready: requests that arrived together join this batch.
            loop.call_soon(self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """One batch on the event loop; then yield to HTTP work before the next one."""
        self._flush_scheduled = False
        with self._cond:
            batch = self._take()
        if batch:
            self._deliver(self._run_batch(batch))
        if self._queue:
            self._schedule_flush(loop)

    def _deliver(self, jobs: list[_Job]) -> None:
        if self.on_event_loop:
            _settle(jobs)
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in jobs:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, loop_jobs in by_loop.items():
            # One wake-up per loop per batch, not one per request.
            try:
                loop.call_soon_threadsafe(_settle, loop_jobs)
            except RuntimeError:  # that loop has closed: nobody is waiting for these answers
                log.warning("dropped %d answers for a closed event loop", len(loop_jobs))

    def _run_batch(self, batch: list[tuple[_Job, int]]) -> list[_Job]:
        """Run one forward pass; return the jobs it completed (answered or failed)."""
        started = time.perf_counter()
        for job, _ in batch:
            metrics.QUEUE_LATENCY.observe(started - job.enqueued_at)
        self._batches += 1
        done: list[_Job] = []
        try:
            probabilities = self._predict([job.sequences[i] for job, i in batch])
        except Exception as exc:
            error_id = f"batch-{self._batches}-{int(time.time())}"
            log.exception("inference failed for batch %s of %d texts", error_id, len(batch))
            failure = BatchFailed(error_id)
            failure.__cause__ = exc
            for job, _ in batch:
                if job.outcome is None:
                    job.outcome = failure
                    done.append(job)
            return done
        metrics.INFERENCE_LATENCY.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(batch))
        for row, (job, index) in enumerate(batch):
            if job.outcome is not None:
                continue  # an earlier batch of this request failed; it is already answered
            if job.probabilities is None:
                job.probabilities = np.empty(
                    (len(job.sequences), probabilities.shape[1]), np.float32
                )
            job.probabilities[index] = probabilities[row]
            job.remaining -= 1
            if job.remaining == 0:
                job.outcome = job.probabilities
                done.append(job)
        return done
