"""The queue in front of the model: admission, and batches taken within the budgets.

It owns the policy, not the threading: the runner (app/infer/runner.py) decides where batches run and
serializes access. Requests count by texts, so a request with many texts can span several batches
and share them with other requests. Admission is bounded twice: by queued texts and, once the
runner has measured what a text costs, by the estimated wait; past either bound a caller gets
Overloaded at once instead of waiting. Texts of a client that has gone away are dropped here,
before they reach the model.
"""

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app import metrics
from app.infer.errors import ClientGone, Overloaded


def never_gone() -> bool:
    return False


@dataclass(eq=False)
class Job:
    """One request's texts; resolved on its event loop when the last of them is done."""

    sequences: list[list[int]]
    future: asyncio.Future[np.ndarray]
    client_gone: Callable[[], bool] = never_gone
    enqueued_at: float = field(default_factory=time.perf_counter)
    remaining: int = field(init=False)
    probabilities: np.ndarray | None = None
    outcome: np.ndarray | BaseException | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.remaining = len(self.sequences)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.future.get_loop()


Entry = tuple[Job, int]  # a job and the index of one of its texts

# Weight of the newest batch in the moving average of the cost per text.
_COST_SMOOTHING = 0.2


class TextQueue:
    def __init__(
        self,
        max_batch_size: int,
        max_batch_tokens: int,
        max_queue_texts: int,
        max_wait_s: float = 0.0,
        max_queue_s: float = 0.0,
    ) -> None:
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_queue_texts = max_queue_texts
        self.max_wait_s = max_wait_s
        self.max_queue_s = max_queue_s
        self.closed = False
        self._entries: deque[Entry] = deque()
        self._seconds_per_text = 0.0  # unknown until the first batch is measured

    def __len__(self) -> int:
        return len(self._entries)

    def admit(self, job: Job) -> None:
        """Queue every text of `job`, or raise Overloaded and queue none."""
        if self.closed:
            raise Overloaded("server busy: shutting down; retry later")
        queued, arriving = len(self._entries), len(job.sequences)
        wait_s = (queued + arriving) * self._seconds_per_text
        if queued + arriving > self.max_queue_texts:
            raise Overloaded(
                f"server busy: {queued} texts queued (limit MAX_QUEUE_TEXTS="
                f"{self.max_queue_texts}); retry later",
                self._retry_after(queued),
            )
        if self.max_queue_s and wait_s > self.max_queue_s:
            raise Overloaded(
                f"server busy: estimated wait {wait_s * 1000:.0f} ms "
                f"(limit MAX_QUEUE_MS={self.max_queue_s * 1000:.0f}); retry later",
                self._retry_after(queued),
            )
        # The depth gauge is set once per batch, in take(): not once per request.
        self._entries.extend((job, i) for i in range(arriving))

    def _retry_after(self, queued: int) -> int:
        """Whole seconds until what is queued now has run (at least 1, as Retry-After needs)."""
        return max(1, math.ceil(queued * self._seconds_per_text))

    def seconds_until_batch(self, now: float) -> float:
        """How long to wait for a fuller batch before taking one: 0 = take it now.

        MAX_WAIT_MS means one thing: wait until a full batch is queued or the oldest queued text
        has waited MAX_WAIT_MS, whichever comes first.
        """
        if not self.max_wait_s or len(self._entries) >= self.max_batch_size or self.closed:
            return 0.0
        oldest = self._entries[0][0].enqueued_at
        return max(0.0, oldest + self.max_wait_s - now)

    def take(self) -> tuple[list[Entry], list[Job]]:
        """The next batch, FIFO, within the size and padded-token budgets (at least one text),
        and the jobs dropped on the way because their client had gone."""
        batch: list[Entry] = []
        dropped: list[Job] = []
        longest = 0
        while self._entries and len(batch) < self.max_batch_size:
            job, index = self._entries[0]
            if job.outcome is not None or job.future.done():  # answered or abandoned already
                self._entries.popleft()
                continue
            if job.client_gone():  # never reaches the model; its handler gets ClientGone
                self._entries.popleft()
                job.outcome = ClientGone()
                dropped.append(job)
                metrics.ABANDONED_TEXTS.inc(job.remaining)
                continue
            length = max(longest, len(job.sequences[index]))
            if batch and length * (len(batch) + 1) > self.max_batch_tokens:
                break
            batch.append(self._entries.popleft())
            longest = length
        metrics.QUEUE_DEPTH.set(len(self._entries))
        return batch, dropped

    def record_batch(self, texts: int, seconds: float) -> None:
        """Feed the measured time a busy runner took per batch into the wait estimate."""
        cost = seconds / texts
        if not self._seconds_per_text:
            self._seconds_per_text = cost
        else:
            self._seconds_per_text += _COST_SMOOTHING * (cost - self._seconds_per_text)
