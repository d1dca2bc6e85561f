"""The loaded model and its batcher, with the readiness state that /health/ready reports."""

import logging

from app.artifacts import ArtifactError, Artifacts, count_parameters, load_artifacts
from app.batcher import Batcher
from app.runner import ModelRunner, select_device
from app.settings import Settings

log = logging.getLogger(__name__)


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.artifacts: Artifacts | None = None
        self.runner: ModelRunner | None = None
        self.batcher: Batcher | None = None
        self.not_ready_reason: str | None = "starting: model not loaded yet"
        # Set on SIGTERM: readiness fails so no new traffic is routed here, while requests that
        # still arrive before the server closes its sockets are served, not dropped.
        self.shutting_down = False

    @property
    def ready(self) -> bool:
        return self.not_ready_reason is None

    def load(self) -> None:
        """Load, verify and warm up the model; on failure stay not-ready and say why."""
        settings = self.settings
        try:
            artifacts = load_artifacts(settings.model_dir)
            runner = ModelRunner(
                artifacts, select_device(settings.device), settings.threads_per_worker()
            )
            runner.warm_up()
        except ArtifactError as exc:
            self.not_ready_reason = f"model artifacts refused: {exc}"
            log.error("not ready: artifact %s in %s refused: %s", exc.file, settings.model_dir, exc)
            return
        except Exception as exc:  # e.g. DEVICE=cuda without CUDA: say so, never die silently
            self.not_ready_reason = f"model could not start: {exc}"
            log.exception("not ready: model could not start")
            return
        batcher = Batcher(
            runner.predict,
            settings.max_batch_size,
            settings.max_batch_tokens,
            settings.max_queue_texts,
            settings.max_wait_ms / 1000,
            on_event_loop=settings.inference_thread == "off"
            or (
                settings.inference_thread == "auto"
                and runner.device.type == "cpu"
                and settings.cpus_per_worker() == 1
            ),
        )
        batcher.start()
        self.artifacts, self.runner, self.batcher = artifacts, runner, batcher
        self.not_ready_reason = None
        log.info(
            "ready: %s version %s (%d parameters) from %s on %s, forward passes %s",
            artifacts.name,
            artifacts.version,
            count_parameters(artifacts.model),
            settings.model_dir,
            runner.device,
            "on the event loop" if batcher.on_event_loop else "on a dedicated thread",
        )

    def begin_shutdown(self) -> None:
        """Called from the signal handler: only sets a flag and logs (once, signals may repeat)."""
        if not self.shutting_down:
            self.shutting_down = True
            log.info("not ready: shutting down, finishing in-flight requests")

    def drain(self) -> None:
        """Turn not-ready, then finish every queued text before the model thread ends."""
        self.not_ready_reason = "shutting down"
        if self.batcher is not None:
            self.batcher.stop()
