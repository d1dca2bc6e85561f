"""What runs in a worker process of `--workers N`: its own scorer, loaded from a path.

Kept apart from pipeline.py so that a worker imports the scoring core and nothing of pyarrow:
it gets texts as a list and sends back numpy arrays, and each MB it does not load counts N times.
"""

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app.bulk.scoring import Scorer, Scores


@dataclass(frozen=True)
class ScorerSpec:
    """What a worker process needs to load its own scorer: paths and numbers, never the model."""

    model_dir: Path
    batch_size: int
    max_text_chars: int
    truncation: Literal["truncate", "reject"]

    def load(self) -> Scorer:
        return Scorer.load(self.model_dir, 1, self.batch_size, self.max_text_chars, self.truncation)


_worker_scorer: Scorer | None = None


def start_worker(spec: ScorerSpec, barrier: Any) -> None:
    global _worker_scorer
    # Ctrl-C reaches the whole process group: the parent answers it and ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_scorer = spec.load()
    barrier.wait(timeout=300)  # every worker loaded before any takes work (WorkerPool)


def ready() -> None:
    """A task that only proves its worker finished starting."""


def score_in_worker(texts: list[object]) -> Scores:
    assert _worker_scorer is not None, "worker started without its scorer"
    return _worker_scorer.score(texts)
