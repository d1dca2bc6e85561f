"""Shadow scoring: what the live version answered, scored by the shadow version too, off the
request's path, and compared.

The request has its answer before anything here runs: `offer` only queues the texts (bounded;
when the shadow falls behind, texts are dropped and counted, so it never slows the live
version). One task per (live, shadow) pair sends them through the shadow version's own queue
and engine, and counts per pair: texts compared and dropped, label agreement, and the
difference of the top probability. It holds the shadow version until stopped, so the version is
not freed while texts for it are queued.
"""

import asyncio
import logging
from dataclasses import dataclass

import numpy as np

from app import metrics
from app.infer.errors import InferError
from app.infer.version import LoadedVersion

log = logging.getLogger(__name__)

# Requests waiting for the shadow: past this, new ones are dropped (counted).
QUEUED_REQUESTS = 64


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
    def __init__(self, live: LoadedVersion, shadow: LoadedVersion) -> None:
        self.live, self.shadow = live, shadow
        self.figures = ShadowFigures()
        pair = (live.ref.name, live.ref.version, shadow.ref.version)
        self._compared = metrics.SHADOW_TEXTS.labels(*pair, "compared")
        self._dropped = metrics.SHADOW_TEXTS.labels(*pair, "dropped")
        self._agreed = metrics.SHADOW_AGREEMENT.labels(*pair)
        self._difference = metrics.SHADOW_DIFFERENCE.labels(*pair)
        self._difference_max = metrics.SHADOW_DIFFERENCE_MAX.labels(*pair)
        self._queue: asyncio.Queue[tuple[list[list[int]], np.ndarray]] = asyncio.Queue(
            QUEUED_REQUESTS
        )
        shadow.acquire()
        self._task = asyncio.get_running_loop().create_task(self._score_forever())

    def offer(self, sequences: list[list[int]], probabilities: np.ndarray) -> None:
        """Queue a request's texts and the live version's probabilities; drop them when full."""
        try:
            self._queue.put_nowait((sequences, probabilities))
        except asyncio.QueueFull:
            self._drop(len(sequences))

    def stop(self) -> None:
        """No more comparisons: what is queued is dropped uncounted, the shadow version let go."""
        self._task.cancel()
        self.shadow.release()

    def _drop(self, texts: int) -> None:
        self.figures.dropped += texts
        self._dropped.inc(texts)

    async def _score_forever(self) -> None:
        while True:
            sequences, live = await self._queue.get()
            try:
                shadowed = await self.shadow.runner.submit(sequences)
            except InferError as exc:  # its queue is full, or the batch failed: not compared
                log.info("shadow %s dropped %d texts: %s", self.shadow.ref, len(sequences), exc)
                self._drop(len(sequences))
                continue
            self._compare(live, shadowed)

    def _compare(self, live: np.ndarray, shadowed: np.ndarray) -> None:
        rows = np.arange(len(live))
        best = live.argmax(axis=1)
        agreed = int((shadowed.argmax(axis=1) == best).sum())
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
