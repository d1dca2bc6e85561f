"""The service's one piece of state: the loaded model (once it is) and its readiness."""

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from app import metrics
from app.artifacts import ArtifactError, Artifacts, count_parameters, load_artifacts
from app.engine import Engine, make_engine, warm_up
from app.queue import TextQueue
from app.runner import Runner, make_runner
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """Everything a request needs; exists only once the model is loaded, verified and warm."""

    settings: Settings
    artifacts: Artifacts
    engine: Engine
    runner: Runner
    # Large requests are tokenized here, off the event loop (app/pipeline.py).
    tokenizer_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="tokenizer")
    )


@dataclass(frozen=True)
class Readiness:
    state: Literal["starting", "ready", "draining", "failed"]
    reason: str  # why not ready; empty when ready

    @property
    def ready(self) -> bool:
        return self.state == "ready"


def _load_model(settings: Settings) -> LoadedModel:
    artifacts = load_artifacts(settings.model_dir)
    engine = make_engine(settings.engine, artifacts, settings.device, settings.threads_per_worker())
    warm_up(engine, settings.max_batch_size, artifacts.max_length)
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
        count_parameters(artifacts.model),
        settings.model_dir,
        engine.name,
        engine.device,
        "on the event loop" if on_event_loop else "on a dedicated thread",
    )
    return LoadedModel(settings, artifacts, engine, runner)


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model: LoadedModel | None = None
        self.readiness = Readiness("starting", "model not loaded yet")
        metrics.READY.set(0)

    def _set(self, readiness: Readiness) -> None:
        self.readiness = readiness
        metrics.READY.set(1 if readiness.ready else 0)

    def load(self) -> None:
        """Load, verify and warm up the model; on failure stay not-ready and say why."""
        try:
            self.model = _load_model(self.settings)
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
        if self.readiness.state != "draining":
            self._set(Readiness("draining", "shutting down"))
            log.info("not ready: shutting down, finishing in-flight requests")

    def drain(self) -> None:
        """Finish every queued text, then end the runner and the tokenizer pool."""
        self.begin_shutdown()
        if self.model is not None:
            self.model.runner.stop()
            self.model.tokenizer_pool.shutdown()
