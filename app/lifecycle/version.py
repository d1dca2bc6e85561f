"""One served model version: its artifacts, engine, queue and runner, loaded, verified and warm
before any request sees it, and retired without failing a request that already holds it.

Before it serves, a version must give the known answers (app/lifecycle/known_answers.py).
"""

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from app.batching.queue import TextQueue
from app.batching.runner import Runner, make_runner
from app.core.artifacts import Artifacts, load_artifacts
from app.engines.base import Engine
from app.engines.choice import make_engine, warm_up
from app.lifecycle.known_answers import check_known_answers
from app.lifecycle.validation import TextRules
from app.repository.layout import VersionFolder
from app.settings import Settings
from app.version_metrics import VersionMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRef:
    """Which model answered: the `name` and `version` of its config.json."""

    name: str
    version: str


@dataclass(eq=False)
class LoadedVersion:
    """Everything a request needs, once the version is loaded, verified and warm."""

    ref: ModelRef
    settings: Settings
    artifacts: Artifacts
    engine: Engine
    runner: Runner
    metrics: VersionMetrics
    # Large requests are tokenized here, off the event loop (app/infer/classify.py).
    tokenizer_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="tokenizer")
    )
    in_flight: int = 0  # requests holding this version; touched on the event loop only
    # While a rollout compares this version's answers with another's (app/lifecycle/shadow.py): it
    # takes each request's texts and probabilities. Set by the registry.
    on_answered: Callable[[list[str], np.ndarray], None] | None = None
    last_used: float = field(default_factory=time.monotonic)
    _idle: asyncio.Event | None = None

    @cached_property
    def rules(self) -> TextRules:
        """The text rules of this model and the settings, for every request."""
        return TextRules.of(self.artifacts, self.settings)

    def acquire(self) -> None:
        self.in_flight += 1
        self.last_used = time.monotonic()

    def release(self) -> None:
        self.in_flight -= 1
        if not self.in_flight and self._idle is not None:
            self._idle.set()

    async def retire(self) -> None:
        """Once no request holds it any more: finish its queue, then free it."""
        self.metrics.set_state("unloading")
        if self.in_flight:
            self._idle = asyncio.Event()
            await self._idle.wait()
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        self.runner.stop()
        self.tokenizer_pool.shutdown()
        self.metrics.remove()


def load_version(settings: Settings, folder: VersionFolder) -> LoadedVersion:
    """Load, verify, check and warm up a version; ArtifactError (or another error) if refused.
    Blocking: run it off the event loop."""
    ref = ModelRef(folder.name, folder.version)
    version_metrics = VersionMetrics(ref.name, ref.version)
    version_metrics.set_state("loading")
    try:
        return _load(settings, folder, ref, version_metrics)
    except BaseException:
        version_metrics.remove()
        raise


def _load(
    settings: Settings, folder: VersionFolder, ref: ModelRef, version_metrics: VersionMetrics
) -> LoadedVersion:
    artifacts = load_artifacts(folder.path)
    engine = make_engine(settings.engine, artifacts, settings.device, settings.threads_per_worker())
    check_known_answers(artifacts, engine)
    warm_up(engine, settings.max_batch_size, artifacts.max_length)
    engine.on_batch = version_metrics.count_tokens  # counted from here: warm-up is no traffic
    trained = artifacts.config.get("monitoring", {}).get("unknown_word_share")
    if isinstance(trained, int | float):
        version_metrics.set_trained_unknown_share(float(trained))
    queue = TextQueue(
        settings.max_batch_size,
        settings.max_batch_tokens,
        settings.max_queue_texts,
        settings.max_wait_ms / 1000,
        settings.max_queue_ms / 1000,
    )
    on_event_loop = settings.inference_thread == "off" or (
        settings.inference_thread == "auto"
        and engine.device == "cpu"
        and settings.cpus_per_worker() == 1
    )
    runner = make_runner(queue, engine, on_event_loop, version_metrics)
    runner.start()
    log.info(
        "loaded: %s version %s (%d parameters) from %s, engine %s on %s, forward passes %s",
        ref.name,
        ref.version,
        artifacts.parameters,
        folder.path,
        engine.name,
        engine.device,
        "on the event loop" if on_event_loop else "on a dedicated thread",
    )
    return LoadedVersion(ref, settings, artifacts, engine, runner, version_metrics)
