"""What the request path reads: the loaded model version (once it is) and the readiness."""

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from app import metrics
from app.core.artifacts import ArtifactError, Artifacts, load_artifacts
from app.engines.base import Engine
from app.engines.choice import make_engine, warm_up
from app.infer.errors import NotReady, Overloaded
from app.infer.queue import TextQueue
from app.infer.results import ModelRef
from app.infer.runner import Runner, make_runner
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedVersion:
    """Everything a request needs; exists only once the model is loaded, verified and warm."""

    settings: Settings
    artifacts: Artifacts
    engine: Engine
    runner: Runner
    # Large requests are tokenized here, off the event loop (app/infer/classify.py).
    tokenizer_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="tokenizer")
    )

    @cached_property
    def ref(self) -> ModelRef:
        return ModelRef(self.artifacts.name, self.artifacts.version)


@dataclass(frozen=True)
class Readiness:
    state: Literal["starting", "ready", "draining", "failed"]
    reason: str  # why not ready; empty when ready

    @property
    def ready(self) -> bool:
        return self.state == "ready"


class ExplainSlots:
    """Explanations computing now, at most `limit` per worker: one costs tens of classifications,
    so past the bound a request is refused at once rather than queued behind the others. Touched
    only on the event loop, so no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy = 0

    @contextmanager
    def take(self) -> Iterator[None]:
        if self.busy >= self.limit:
            raise Overloaded(
                f"{self.busy} explanations running (MAX_CONCURRENT_EXPLAIN={self.limit}); "
                "retry later"
            )
        self.busy += 1
        metrics.EXPLAIN_IN_FLIGHT.inc()
        try:
            yield
        finally:
            self.busy -= 1
            metrics.EXPLAIN_IN_FLIGHT.dec()


def _load_version(settings: Settings) -> LoadedVersion:
    artifacts = load_artifacts(settings.model_dir)
    engine = make_engine(settings.engine, artifacts, settings.device, settings.threads_per_worker())
    warm_up(engine, settings.max_batch_size, artifacts.max_length)
    engine.on_batch = metrics.count_tokens  # counted from here: the warm-up is no traffic
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
    runner = make_runner(queue, engine, on_event_loop)
    runner.start()
    log.info(
        "ready: %s version %s (%d parameters) from %s, engine %s on %s, forward passes %s",
        artifacts.name,
        artifacts.version,
        artifacts.parameters,
        settings.model_dir,
        engine.name,
        engine.device,
        "on the event loop" if on_event_loop else "on a dedicated thread",
    )
    return LoadedVersion(settings, artifacts, engine, runner)


class ServingState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loaded: LoadedVersion | None = None
        self.readiness = Readiness("starting", "model not loaded yet")
        self.explain_slots = ExplainSlots(settings.max_concurrent_explain)
        metrics.READY.set(0)

    def _set(self, readiness: Readiness) -> None:
        self.readiness = readiness
        metrics.READY.set(1 if readiness.ready else 0)

    @property
    def draining(self) -> bool:
        return self.readiness.state == "draining"

    def version(self) -> LoadedVersion:
        """The version that answers, or NotReady with the reason there is none."""
        if self.loaded is None:
            raise NotReady(self.readiness.reason)
        return self.loaded

    def require_ready(self) -> None:
        """NotReady unless the service takes traffic: starting, failed and draining are all not
        ready (what the readiness probes report)."""
        if not self.readiness.ready:
            raise NotReady(self.readiness.reason)

    def load(self) -> None:
        """Load, verify and warm up the model; on failure stay not-ready and say why."""
        try:
            self.loaded = _load_version(self.settings)
        except ArtifactError as exc:
            self._set(Readiness("failed", f"model artifacts refused: {exc}"))
            log.error(
                "not ready: artifact %s in %s refused: %s", exc.file, self.settings.model_dir, exc
            )
            return
        except Exception as exc:  # e.g. DEVICE=cuda without CUDA: say so, never die silently
            self._set(Readiness("failed", f"model could not start: {exc}"))
            log.exception("not ready: model could not start")
            return
        self._set(Readiness("ready", ""))

    def begin_shutdown(self) -> None:
        """Called from the signal handler: readiness fails at once, while requests that still
        arrive before the server closes its sockets are served, not dropped. Logs once (signals
        may repeat)."""
        if not self.draining:
            self._set(Readiness("draining", "shutting down"))
            log.info("not ready: shutting down, finishing in-flight requests")

    def drain(self) -> None:
        """Finish every queued text, then end the runner and the tokenizer pool."""
        self.begin_shutdown()
        if self.loaded is not None:
            self.loaded.runner.stop()
            self.loaded.tokenizer_pool.shutdown()
