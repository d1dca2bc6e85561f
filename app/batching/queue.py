"""The queue in front of the model: admission, and batches taken within the budgets.

It owns the policy, not the threading: the runner (app/batching/runner.py) decides where batches run and
serializes access. Requests count by texts, so a request with many texts can span several batches
and share them with other requests. Admission is bounded twice: by queued texts and, once the
runner has measured what a text costs, by the estimated wait; past either bound a caller gets
Overloaded at once instead of waiting. Texts of a client that has gone away are dropped here,
before they reach the model. A batch starts from the oldest text and, when more are waiting than
fit, takes the ones closest to it in length.
"""

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from app import metrics
from app.errors import ClientGone, Overloaded


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
# How far down the queue a batch looks for texts of similar length, in batches.
WINDOW_BATCHES = 4


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
        """The next batch within the size and padded-token budgets (at least one text), and the
        jobs dropped on the way because their client had gone.

        The oldest queued text is always in it. When more texts wait than fit, the rest of the
        batch is the texts closest in length to it among the next few batches' worth: the engine
        pads a batch to its longest text, so a batch of similar lengths wastes less work (a text
        gets the same answer in any batch).
        """
        dropped: list[Job] = []
        window = self._live_head(self.max_batch_size * WINDOW_BATCHES, dropped)
        batch, rest = self._choose(window)
        self._entries.extendleft(reversed(rest))
        return batch, dropped

    def _live_head(self, size: int, dropped: list[Job]) -> list[Entry]:
        """Up to `size` entries taken off the head, skipping (and dropping) the dead ones."""
        live: list[Entry] = []
        while self._entries and len(live) < size:
            entry = self._entries.popleft()
            job = entry[0]
            if job.outcome is not None or job.future.done():  # answered or abandoned already
                continue
            if job.client_gone():  # never reaches the model; its handler gets ClientGone
                job.outcome = ClientGone()
                dropped.append(job)
                metrics.ABANDONED_TEXTS.inc(job.remaining)
                continue
            live.append(entry)
        return live

    def _choose(self, window: list[Entry]) -> tuple[list[Entry], list[Entry]]:
        """(the batch, the rest in queue order) out of the live head of the queue."""
        if not window:
            return [], []
        lengths = [len(job.sequences[index]) for job, index in window]
        order: Iterable[int] = range(len(window))
        if len(window) > self.max_batch_size:
            oldest = lengths[0]
            order = sorted(order, key=lambda i: (i > 0, abs(lengths[i] - oldest), i))
        chosen: list[int] = []
        longest = 0
        for i in order:
            length = max(longest, lengths[i])
            if chosen and length * (len(chosen) + 1) > self.max_batch_tokens:
                if len(window) > self.max_batch_size:
                    continue  # a text further away in length may still fit
                break
            chosen.append(i)
            longest = length
            if len(chosen) == self.max_batch_size:
                break
        taken = set(chosen)
        batch = [window[i] for i in sorted(taken)]
        return batch, [entry for i, entry in enumerate(window) if i not in taken]

    def record_batch(self, texts: int, seconds: float) -> None:
        """Feed the measured time a busy runner took per batch into the wait estimate."""
        cost = seconds / texts
        if not self._seconds_per_text:
            self._seconds_per_text = cost
        else:
            self._seconds_per_text += _COST_SMOOTHING * (cost - self._seconds_per_text)
