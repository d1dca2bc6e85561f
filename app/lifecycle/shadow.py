"""Shadow scoring: what one version answered, scored by another too, off the request's path, and
compared. In a shadow rollout the live version answers and the shadow scores; in a guarded
canary the candidate answers and the live version scores, so its agreement can be watched too.

The request has its answer before anything here runs: `offer` only queues the texts (bounded;
when the scorer falls behind, texts are dropped and counted). The scoring runs the scoring
version's engine on a thread of its own at the lowest CPU priority (nice 19), never on the event
loop and never in the answering version's queue: while the answering version keeps the CPU busy
the kernel gives the scorer next to nothing, its queue fills and it sheds, so it does not slow
the answers; idle CPU is what it scores with. Counted per (model, live, shadow or candidate):
texts compared and dropped, label agreement, and the difference of the top probability. With a
guard, agreement over the last `over_texts` compared texts below `min_agreement` calls
`on_tripped` once. It holds the scoring version
until stopped, so that version is not freed while texts for it are queued.
"""

import asyncio
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from app import metrics
from app.lifecycle.version import LoadedVersion
from app.repository.rollout import Guard

log = logging.getLogger(__name__)

# Requests waiting for the shadow: past this, new ones are dropped (counted).
QUEUED_REQUESTS = 64
LOWEST_PRIORITY = 19


def _lowest_priority() -> None:
    """The calling thread at the lowest CPU priority (Linux: nice is per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
    except OSError as exc:  # not Linux, or refused: it still runs, at normal priority
        log.warning("shadow scoring at normal CPU priority: %s", exc)


@dataclass
class ShadowFigures:
    """The comparison so far, for GET /models."""

    compared: int = 0
    dropped: int = 0
    agreed: int = 0
    difference_sum: float = 0.0
    difference_max: float = 0.0

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "texts_compared": self.compared,
            "texts_dropped": self.dropped,
            "label_agreement": round(self.agreed / self.compared, 6) if self.compared else None,
            "top_probability_difference_mean": (
                round(self.difference_sum / self.compared, 6) if self.compared else None
            ),
            "top_probability_difference_max": round(self.difference_max, 6),
        }


class Shadowing:
    def __init__(
        self,
        answering: LoadedVersion,
        scoring: LoadedVersion,
        pair: tuple[str, str, str],
        guard: Guard | None = None,
        on_tripped: Callable[[str], None] = lambda reason: None,
    ) -> None:
        """`pair`: (model, live version, shadow or candidate version), the metrics' labels."""
        self.answering, self.scoring = answering, scoring
        self.figures = ShadowFigures()
        self._compared = metrics.SHADOW_TEXTS.labels(*pair, "compared")
        self._dropped = metrics.SHADOW_TEXTS.labels(*pair, "dropped")
        self._agreed = metrics.SHADOW_AGREEMENT.labels(*pair)
        self._difference = metrics.SHADOW_DIFFERENCE.labels(*pair)
        self._difference_max = metrics.SHADOW_DIFFERENCE_MAX.labels(*pair)
        self._guard, self._on_tripped = guard, on_tripped
        self._recent: deque[bool] = deque(maxlen=guard.over_texts if guard else 1)
        self._queue: asyncio.Queue[tuple[list[str], np.ndarray]] = asyncio.Queue(QUEUED_REQUESTS)
        self._thread = ThreadPoolExecutor(
            1, thread_name_prefix="shadow", initializer=_lowest_priority
        )
        self._batch_texts = scoring.settings.max_batch_size
        scoring.acquire()
        self._task = asyncio.get_running_loop().create_task(self._score_forever())

    def offer(self, texts: list[str], probabilities: np.ndarray) -> None:
        """Queue a request's texts and the answering version's probabilities; drop them when
        full. The texts, not their ids: the scoring version has a vocabulary of its own."""
        try:
            self._queue.put_nowait((texts, probabilities))
        except asyncio.QueueFull:
            self._drop(len(texts))

    def stop(self) -> None:
        """No more comparisons: what is queued is dropped uncounted, the scoring version let go."""
        self._task.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)
        self.scoring.release()

    def _drop(self, texts: int) -> None:
        self.figures.dropped += texts
        self._dropped.inc(texts)

    async def _score_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # What is queued, up to a batch's worth of texts, in one forward pass.
            waiting = [await self._queue.get()]
            texts = len(waiting[0][0])
            while not self._queue.empty() and texts < self._batch_texts:
                waiting.append(self._queue.get_nowait())
                texts += len(waiting[-1][0])
            requests = [request_texts for request_texts, _ in waiting]
            scored = await loop.run_in_executor(self._thread, self._score, requests)
            for (request_texts, answered), probabilities in zip(waiting, scored, strict=True):
                if probabilities is None:
                    self._drop(len(request_texts))
                else:
                    self._compare(answered, probabilities)

    def _score(self, requests: list[list[str]]) -> list[np.ndarray | None]:
        """Each request's probabilities from the scoring version (None: not scored), the texts
        tokenized with its own vocabulary and rules. On the shadow thread."""
        encoded = [self._encode(texts) for texts in requests]
        sequences = [ids for request in encoded if request is not None for ids in request]
        try:
            probabilities = self.scoring.engine.predict(sequences) if sequences else None
        except Exception:  # the shadow failing must not touch the live answers
            log.exception("shadow scoring by %s failed", self.scoring.ref)
            return [None] * len(requests)
        scored: list[np.ndarray | None] = []
        start = 0
        for request in encoded:
            if request is None or probabilities is None:
                scored.append(None)
                continue
            scored.append(probabilities[start : start + len(request)])
            start += len(request)
        return scored

    def _encode(self, texts: list[str]) -> list[list[int]] | None:
        """The texts as the scoring version reads them; None if its rules refuse one."""
        sequences = []
        for text in texts:
            item = self.scoring.rules.encode(text)
            if isinstance(item, str):
                return None
            sequences.append(item.ids)
        return sequences

    def _compare(self, live: np.ndarray, shadowed: np.ndarray) -> None:
        rows = np.arange(len(live))
        best = live.argmax(axis=1)
        same = shadowed.argmax(axis=1) == best
        agreed = int(same.sum())
        differences = np.abs(live[rows, best] - shadowed[rows, best])
        figures = self.figures
        figures.compared += len(live)
        figures.agreed += agreed
        figures.difference_sum += float(differences.sum())
        figures.difference_max = max(figures.difference_max, float(differences.max()))
        self._compared.inc(len(live))
        self._agreed.inc(agreed)
        for difference in differences.tolist():
            self._difference.observe(difference)
        self._difference_max.set(figures.difference_max)
        if self._guard is not None:
            self._watch(same.tolist(), self._guard)

    def _watch(self, same: list[bool], guard: Guard) -> None:
        was_full = len(self._recent) == guard.over_texts
        self._recent.extend(same)
        if len(self._recent) < guard.over_texts:
            return
        agreement = sum(self._recent) / guard.over_texts
        if agreement < guard.min_agreement:
            self._guard = None  # trips once
            self._on_tripped(
                f"label agreement {agreement:.3f} over the last {guard.over_texts} texts is "
                f"below the guard's {guard.min_agreement}"
                + ("" if was_full else " (the first full window)")
            )
