"""The batch runner: takes batches from the queue, runs them through the engine, answers jobs.

Where forward passes run is chosen once, at startup, by the CPUs a worker has:
- two or more (or a GPU): ThreadRunner, a dedicated thread (the engines release the GIL), so
  the event loop keeps parsing and validating HTTP while the model computes;
- exactly one: LoopRunner, on the event loop itself, as a callback scheduled when work arrives.
  A thread cannot overlap anything on one core; it only adds two thread wake-ups per request,
  which the benchmark measured as a loss at every load (bench/README.md).
"""

import asyncio
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from app.batching.queue import Entry, Job, TextQueue, never_gone
from app.engines.base import Engine
from app.errors import BatchFailed
from app.version_metrics import VersionMetrics

log = logging.getLogger(__name__)


def _settle(jobs: list[Job]) -> None:
    """Resolve the futures of finished jobs; runs on their event loop."""
    for job in jobs:
        if job.future.done():  # cancelled meanwhile
            continue
        if isinstance(job.outcome, BaseException):
            job.future.set_exception(job.outcome)
        elif job.outcome is not None:
            job.future.set_result(job.outcome)


class Runner(ABC):
    def __init__(self, queue: TextQueue, engine: Engine, metrics: VersionMetrics) -> None:
        self.queue = queue
        self.engine = engine
        self.metrics = metrics
        self._batches = 0
        # (start, texts) of the last batch if another was already waiting when it started.
        self._back_to_back: tuple[float, int] | None = None

    @abstractmethod
    async def submit(
        self, sequences: list[list[int]], client_gone: Callable[[], bool] = never_gone
    ) -> np.ndarray:
        """Probabilities for `sequences`, in order, computed alongside other requests' texts.

        Raises Overloaded (not queued), ClientGone (dropped unrun) or BatchFailed.
        """

    @abstractmethod
    def start(self) -> None:
        """Begin taking batches."""

    @abstractmethod
    def stop(self, timeout: float | None = None) -> None:
        """Refuse new texts, finish every queued one."""

    def _run_batch(self, batch: list[Entry]) -> list[Job]:
        """Run one forward pass; return the jobs it completed (answered or failed)."""
        started = time.perf_counter()
        for job, _ in batch:
            self.metrics.queue_wait.observe(started - job.enqueued_at)
        if self._back_to_back is not None:
            # The whole cycle from one busy batch to the next, not the forward pass alone: HTTP
            # work and GIL waits drain the queue slower than the engine would on its own.
            previous_start, previous_texts = self._back_to_back
            self.queue.record_batch(previous_texts, started - previous_start)
        self._back_to_back = (started, len(batch)) if len(self.queue) else None
        self._batches += 1
        done: list[Job] = []
        try:
            probabilities = self.engine.predict([job.sequences[i] for job, i in batch])
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
        elapsed = time.perf_counter() - started
        self.metrics.inference.observe(elapsed)
        self.metrics.batch_size.observe(len(batch))
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


class ThreadRunner(Runner):
    def __init__(self, queue: TextQueue, engine: Engine, metrics: VersionMetrics) -> None:
        super().__init__(queue, engine, metrics)
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="model-runner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        with self._changed:
            self.queue.closed = True
            self._changed.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    async def submit(
        self, sequences: list[list[int]], client_gone: Callable[[], bool] = never_gone
    ) -> np.ndarray:
        job = Job(sequences, asyncio.get_running_loop().create_future(), client_gone)
        with self._changed:
            self.queue.admit(job)
            self._changed.notify()
        return await job.future

    def _run(self) -> None:
        while True:
            with self._changed:
                while not len(self.queue) and not self.queue.closed:
                    self._changed.wait()
                if not len(self.queue):
                    return  # closed and drained
                while wait := self.queue.seconds_until_batch(time.perf_counter()):
                    self._changed.wait(wait)  # woken by every arrival: re-checks fullness
                batch, dropped = self.queue.take()
                self.metrics.queue_depth.set(len(self.queue))
            self._deliver(dropped)
            if batch:
                self._deliver(self._run_batch(batch))

    @staticmethod
    def _deliver(jobs: list[Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
        for job in jobs:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, loop_jobs in by_loop.items():
            # One wake-up per loop per batch, not one per request.
            try:
                loop.call_soon_threadsafe(_settle, loop_jobs)
            except RuntimeError:  # that loop has closed: nobody is waiting for these answers
                log.warning("dropped %d answers for a closed event loop", len(loop_jobs))


class LoopRunner(Runner):
    def __init__(self, queue: TextQueue, engine: Engine, metrics: VersionMetrics) -> None:
        super().__init__(queue, engine, metrics)
        self._scheduled: asyncio.Handle | None = None

    def start(self) -> None:
        pass  # nothing runs until texts arrive: each arrival schedules a flush

    def stop(self, timeout: float | None = None) -> None:
        # Flushes already scheduled go on draining on the loop; only admission ends here.
        self.queue.closed = True

    async def submit(
        self, sequences: list[list[int]], client_gone: Callable[[], bool] = never_gone
    ) -> np.ndarray:
        loop = asyncio.get_running_loop()
        job = Job(sequences, loop.create_future(), client_gone)
        self.queue.admit(job)
        self._schedule(loop)
        return await job.future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        wait = self.queue.seconds_until_batch(time.perf_counter())
        scheduled = self._scheduled
        if scheduled is not None:
            if wait or not isinstance(scheduled, asyncio.TimerHandle):
                return  # the pending flush still comes in time
            scheduled.cancel()  # the batch filled up before its deadline: run it now
        # call_soon runs after the callbacks already ready: requests that arrived together
        # join this batch.
        self._scheduled = (
            loop.call_later(wait, self._flush) if wait else loop.call_soon(self._flush)
        )

    def _flush(self) -> None:
        """One batch on the event loop; then yield to HTTP work before the next one."""
        self._scheduled = None
        batch, dropped = self.queue.take()
        self.metrics.queue_depth.set(len(self.queue))
        _settle(dropped)
        if batch:
            _settle(self._run_batch(batch))
        if len(self.queue):
            self._schedule(asyncio.get_running_loop())


def make_runner(
    queue: TextQueue, engine: Engine, on_event_loop: bool, metrics: VersionMetrics
) -> Runner:
    return (LoopRunner if on_event_loop else ThreadRunner)(queue, engine, metrics)
