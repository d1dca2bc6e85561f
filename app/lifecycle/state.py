"""What the request path reads: the served model versions, their control, and the readiness."""

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app import metrics
from app.errors import NotReady, Overloaded
from app.lifecycle.control import ModelControl, NotExplicitControl
from app.lifecycle.registry import ModelRegistry
from app.lifecycle.workers import WorkerSync
from app.repository.cache import VersionCache
from app.repository.layout import LoadConfig, Repository, SingleModel
from app.repository.source import Source
from app.repository.store import ObjectStore, StoreAddress, is_object_url
from app.settings import CONTROL_DIR_ENV, Settings

log = logging.getLogger(__name__)


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


def source_for(settings: Settings) -> Source:
    """The local directory, MODEL_DIR, or an object store, from the settings."""
    location = settings.model_repository
    if location is None:
        return SingleModel(settings.model_dir)
    if not is_object_url(location):
        return Repository(Path(location))
    from app.repository.objects import ObjectRepository

    store = ObjectStore(
        StoreAddress.parse(location), settings.s3_endpoint_url, "rnn-text-classifier[s3]"
    )
    store.observe = _count_request
    cache = VersionCache(
        settings.model_cache_dir / store.address.bucket / store.address.prefix,
        settings.model_cache_max_mb * 1024 * 1024,
    )
    return ObjectRepository(store, cache)


def _count_request(operation: str, ok: bool) -> None:
    metrics.REPOSITORY_REQUESTS.labels(operation, "ok" if ok else "error").inc()


class ServingState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings.default_model)
        self.control = ModelControl(settings, self.registry, source_for(settings))
        self.control.on_change = self._publish_readiness
        shared = os.environ.get(CONTROL_DIR_ENV)
        self.sync = (
            WorkerSync(Path(shared), self.control)
            if shared and settings.workers > 1 and settings.model_control == "explicit"
            else None
        )
        self.explain_slots = ExplainSlots(settings.max_concurrent_explain)
        self._started = self._draining = False
        self._tasks: list[asyncio.Task[None]] = []
        # Told each time readiness may have changed (the gRPC health service follows it).
        self.readiness_listeners: list[Callable[[Readiness], None]] = []
        metrics.READY.set(0)

    @property
    def readiness(self) -> Readiness:
        if self._draining:
            return Readiness("draining", "shutting down")
        if not self._started:
            return Readiness("starting", "model not loaded yet")
        if self.registry or self.settings.model_control == "explicit":
            return Readiness("ready", "")
        return Readiness("failed", self.registry.not_ready_reason)

    @property
    def draining(self) -> bool:
        return self._draining

    def _publish_readiness(self) -> None:
        readiness = self.readiness
        metrics.READY.set(1 if readiness.ready else 0)
        for listener in self.readiness_listeners:
            listener(readiness)

    def require_ready(self) -> None:
        """NotReady unless the service takes traffic: starting, failed and draining are all not
        ready (what the readiness probes report)."""
        readiness = self.readiness
        if not readiness.ready:
            raise NotReady(readiness.reason)

    async def start(self) -> None:
        """Serve what the repository holds, as the other workers' calls changed it; then follow
        them, or poll the directory."""
        if self.sync is not None:
            self.sync.register()  # from now on a call waits for this worker
        await self.control.start()
        if self.sync is not None:
            await self.sync.catch_up()
            self._background(self.sync.follow_forever())
        if self.settings.model_control == "poll":
            self._background(self.control.poll_forever(self.settings.poll_interval_s))
        self._started = True
        self._publish_readiness()
        if self.readiness.ready:
            served = ", ".join(f"{v.ref.name} version {v.ref.version}" for v in self.registry.all())
            log.info("ready: serving %s", served or "no model yet (MODEL_CONTROL=explicit)")
        else:
            log.error("not ready: %s", self.readiness.reason)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(work))

    def _require_explicit(self) -> None:
        if self.settings.model_control != "explicit":
            raise NotExplicitControl(
                f"load and unload need MODEL_CONTROL=explicit (this server: "
                f"{self.settings.model_control})"
            )

    async def load_model(self, name: str, asked: LoadConfig) -> None:
        """An explicit load, on every worker; NotExplicitControl unless MODEL_CONTROL=explicit."""
        self._require_explicit()
        if self.sync is not None:
            await self.sync.load(name, asked)
        else:
            await self.control.load(name, asked)

    async def unload_model(self, name: str) -> None:
        """An explicit unload, on every worker; NotExplicitControl unless MODEL_CONTROL=explicit."""
        self._require_explicit()
        if self.sync is not None:
            await self.sync.unload(name)
        else:
            await self.control.unload(name)

    def begin_shutdown(self) -> None:
        """Called from the signal handler: readiness fails at once, while requests that still
        arrive before the server closes its sockets are served, not dropped. Logs once (signals
        may repeat)."""
        if not self._draining:
            self._draining = True
            self._publish_readiness()
            log.info("not ready: shutting down, finishing in-flight requests")

    async def drain(self) -> None:
        """Finish every queued text, then free every version."""
        self.begin_shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.sync is not None:
            self.sync.unregister()
        await self.control.drain()
