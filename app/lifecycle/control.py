"""Which versions are served, and changing that at run time without failing a request.

MODEL_CONTROL=none serves what the repository (or MODEL_DIR) holds at start; explicit adds load
and unload calls (Triton's repository extension, app/v2/repository.py); poll converges on what
the repository holds every POLL_INTERVAL_S, acting only on complete versions. Where the models
are (a directory, a bucket) and whether a version is complete is the source's business
(app/repository/): control only decides what to load. A store that fails is reported and polled
less often until it answers again, while what is loaded keeps serving.

A change of one model converges it on a wanted set of versions: new ones load, verify and warm
up in the background while the old ones serve; then, in one step on the event loop, the new ones
are served and the unwanted ones retired (each finishes the requests that hold it, then is
freed). If a wanted version is refused, nothing is retired: the old version keeps serving.
"""

import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from app import metrics
from app.lifecycle.registry import ModelRegistry
from app.lifecycle.version import LoadedVersion, load_version
from app.repository.checks import VersionChecks
from app.repository.layout import (
    Candidate,
    LoadConfig,
    RepositoryError,
    check_name,
    version_sort_key,
)
from app.repository.policy import VersionPolicy
from app.repository.rollout import Rollout
from app.repository.source import Source, StoreUnavailable
from app.settings import Settings

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (model, version)
AS_CONFIGURED = LoadConfig()  # a load that asks for nothing: the per-model file decides
# While the store fails, polls wait twice as long each time, up to this many intervals.
MAX_BACKOFF = 8


class ControlError(Exception):
    """A load or unload that cannot be done, or was refused; the message says why."""


class NotExplicitControl(ControlError):
    """A load or unload asked of a server whose MODEL_CONTROL is not explicit: not a bad request
    but one the server's mode forbids (v2 REST answers 409)."""


@dataclass(frozen=True)
class Status:
    name: str
    version: str | None
    state: str  # Triton's: READY, LOADING, UNLOADING, UNAVAILABLE
    reason: str = ""


def _release_freed_memory() -> None:
    """Hand the heap an unloaded version used back to the system (glibc keeps it otherwise, and
    a server that loads and unloads all day would only ever grow)."""
    libc = ctypes.util.find_library("c")
    if libc:
        trim = getattr(ctypes.CDLL(libc), "malloc_trim", None)
        if trim is not None:
            trim(0)


def _rollout_problem(name: str, rollout: Rollout, wanted: list[Candidate]) -> str:
    """Why `rollout` cannot route `wanted` ("" if it can): it must name one of them."""
    versions = [f.version for f in wanted]
    if rollout.version is None or rollout.version in versions:
        return ""
    return (
        f"the rollout of {name!r} names version {rollout.version}, which its version_policy "
        f"does not load (it loads {versions})"
    )


class ModelControl:
    def __init__(self, settings: Settings, registry: ModelRegistry, source: Source) -> None:
        self.settings, self.registry, self.source = settings, registry, source
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._loading: set[Key] = set()
        self._retiring: dict[Key, LoadedVersion] = {}
        self._retirements: set[asyncio.Task[None]] = set()
        self._problems: dict[Key, str] = {}  # why a version is not served, for the index
        self.checks = VersionChecks(source)
        self.store_failure = ""  # why the last look at the repository failed; "" if it did not
        self.on_change: Callable[[], None] = lambda: None  # after every convergence
        # Rollouts aborted (by an admin or a guard), by model: while the per-model file still
        # names one, its version stays out, or the next poll would bring it back (as live).
        self._aborted: dict[str, Rollout] = {}
        registry.on_guard_tripped = self._guard_tripped

    # ------------------------------------------------------------ what is wanted

    async def wanted(
        self, name: str, policy: VersionPolicy | None = None, complete_only: bool = False
    ) -> list[Candidate]:
        """The versions to serve: the policy's choice among those the source holds (in poll mode,
        among the complete ones). Only the chosen ones are checked (for a store: fetched), so a
        policy of the latest version never downloads the older ones."""
        available = self.source.candidates(name)
        serving = {v.ref.version for v in self.registry.versions(name)}
        while True:
            chosen = self.source.choose(name, available, policy)
            if not complete_only:
                return chosen
            # A version loaded is complete: it keeps serving whatever its store does meanwhile.
            incomplete = [
                c for c in chosen if c.version not in serving and not await self._complete(c)
            ]
            if not incomplete:
                return chosen
            available = [c for c in available if c not in incomplete]

    async def _complete(self, candidate: Candidate) -> bool:
        try:
            return await asyncio.to_thread(self.checks.complete, candidate)
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return False

    # ------------------------------------------------------------ the store

    async def refresh(self) -> None:
        """Look at the repository again; StoreUnavailable (reported) when it cannot."""
        try:
            await asyncio.to_thread(self.source.refresh)
        except StoreUnavailable as exc:
            self._store_failed(exc)
            raise
        if self.store_failure:
            log.info("model repository reachable again: %s", self.source.describe())
        self.store_failure = ""
        metrics.REPOSITORY_UP.set(1)

    def _store_failed(self, exc: StoreUnavailable) -> None:
        self.store_failure = f"{self.source.describe()} cannot be read: {exc}"
        metrics.REPOSITORY_UP.set(0)
        metrics.REPOSITORY_FAILURES.inc()
        log.error("%s; serving what is loaded", self.store_failure)

    # ------------------------------------------------------------ converging

    async def start(self) -> None:
        """Serve what the source holds (every model, its own policy); with its store down, what
        the cache holds."""
        try:
            await self.refresh()
            names = self.source.models()
        except StoreUnavailable:
            names = self.source.models()  # the cache's, if any
            if not names:
                self.registry.not_ready_reason = self.store_failure
                return
        except RepositoryError as exc:
            self.registry.not_ready_reason = str(exc)
            log.error("no models: %s", exc)
            return
        for name in names:
            try:
                await self.converge(name, *await self._configured(name, self._polling))
            except RepositoryError as exc:
                self._problems[(name, "")] = str(exc)
                log.error("model %s not served: %s", name, exc)

    @property
    def _polling(self) -> bool:
        return self.settings.model_control == "poll"

    async def _configured(self, name: str, complete_only: bool) -> tuple[list[Candidate], Rollout]:
        """What the per-model file asks for: the versions and the rollout, the rollout only when
        the version it names is among them (in poll mode one still being written is not: until it
        is complete, there is no rollout), and neither an aborted rollout nor its version."""
        wanted = await self.wanted(name, complete_only=complete_only)
        rollout = self.source.rollout(name)
        aborted = self._aborted.get(name)
        if aborted is not None and aborted == rollout:
            return [f for f in wanted if f.version != aborted.version], Rollout()
        self._aborted.pop(name, None)
        problem = _rollout_problem(name, rollout, wanted)
        if problem:
            log.warning("%s: no rollout for now", problem)
            return wanted, Rollout()
        return wanted, rollout

    def _guard_tripped(self, name: str, reason: str) -> None:
        """A rollout's guard saw too little agreement: abort it, as an admin's abort would."""
        rollout = self.registry.rollout(name)
        log.error("rollout %s of %s aborted by its guard: %s", rollout.to_json(), name, reason)
        metrics.ROLLOUT_ABORTS.labels(name).inc()
        self._background(self._abort(name, rollout))

    async def _abort(self, name: str, rollout: Rollout) -> None:
        self._aborted[name] = rollout
        served = {v.ref.version for v in self.registry.versions(name)} - {rollout.version}
        try:
            await self.converge(
                name, [c for c in self.source.candidates(name) if c.version in served], Rollout()
            )
        except RepositoryError as exc:
            log.error("aborting the rollout of %s: %s", name, exc)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` (an abort) as a task kept with the retirements, so `drain` waits for it."""
        task = asyncio.get_running_loop().create_task(work)
        self._retirements.add(task)
        task.add_done_callback(self._retirements.discard)

    async def converge(
        self, name: str, wanted: list[Candidate], rollout: Rollout | None = None
    ) -> list[str]:
        """Serve exactly `wanted` of model `name`, routed by `rollout` (None: no rollout); the
        reasons of the versions refused (then the old versions and routing stay)."""
        async with self._locks[name]:
            current = {v.ref.version: v for v in self.registry.versions(name)}
            loaded: list[LoadedVersion] = []
            refused: list[str] = []
            for candidate in wanted:
                if candidate.version in current:
                    continue
                try:
                    loaded.append(await self._load(candidate))
                except Exception as exc:
                    refused.append(f"version {candidate.version} of {name!r} refused: {exc}")
            for new in loaded:  # one step, no await in between: the switch is atomic
                self.registry.add(new)
                self._problems.pop((name, new.ref.version), None)
            if not refused:
                self.registry.set_rollout(name, rollout or Rollout())
                keep = {c.version for c in wanted}
                for number, old in current.items():
                    if number not in keep:
                        self._retire(old, "unloaded")
            self._update_readiness_reason(refused)
            self.on_change()
            return refused

    async def _load(self, candidate: Candidate) -> LoadedVersion:
        key = (candidate.name, candidate.version)
        self._make_room(candidate.name)
        self._loading.add(key)
        started = time.perf_counter()
        try:
            folder = await asyncio.to_thread(self.checks.fetch, candidate)
            version = await asyncio.to_thread(load_version, self.settings, folder)
        except StoreUnavailable as exc:  # not the version's fault: tried again at the next look
            self._store_failed(exc)
            self._problems[key] = f"not fetched: {exc}"
            raise
        except Exception as exc:
            metrics.LOAD_FAILURES.labels(candidate.name).inc()
            self._problems[key] = f"refused: {exc}"
            self.checks.refuse(candidate)
            log.error("not serving %s version %s: %s", candidate.name, candidate.version, exc)
            raise
        finally:
            self._loading.discard(key)
            metrics.LOAD_DURATION.labels(candidate.name).observe(time.perf_counter() - started)
        return version

    def _make_room(self, name: str) -> None:
        limit = self.settings.max_loaded_models
        if not limit or len(self.registry.all()) + len(self._loading) < limit:
            return
        evicted = self.registry.least_recently_used_idle(keep=name)
        if evicted is None:
            raise ControlError(
                f"MAX_LOADED_MODELS={limit} versions are loaded and every other one has "
                "requests in flight"
            )
        self._retire(evicted, f"evicted: least recently used of MAX_LOADED_MODELS={limit}")
        log.info(
            "evicted %s version %s (MAX_LOADED_MODELS=%d)",
            evicted.ref.name,
            evicted.ref.version,
            limit,
        )

    def _retire(self, version: LoadedVersion, reason: str) -> asyncio.Task[None]:
        key = (version.ref.name, version.ref.version)
        self.registry.remove(*key)
        self._retiring[key] = version
        self._problems[key] = reason
        task = asyncio.get_running_loop().create_task(self._finish(key, version), name=key[0])
        self._retirements.add(task)
        task.add_done_callback(self._retirements.discard)
        return task

    async def _finish(self, key: Key, version: LoadedVersion) -> None:
        try:
            await version.retire()
        finally:
            self._retiring.pop(key, None)
            await asyncio.to_thread(_release_freed_memory)
            log.info("unloaded %s version %s", *key)

    def _update_readiness_reason(self, refused: list[str]) -> None:
        if refused:
            self.registry.not_ready_reason = refused[-1]

    async def drain(self) -> None:
        """Retire every version (at shutdown), and wait for all of them to be freed."""
        for version in self.registry.all():
            self._retire(version, "shutting down")
        await asyncio.gather(*self._retirements, return_exceptions=True)

    async def poll_forever(self, interval_s: float) -> None:
        """Converge on the repository every `interval_s`: new complete versions in, removed
        versions and models out. While the store fails, every wait is twice the one before (up
        to MAX_BACKOFF intervals), and nothing loaded is unloaded."""
        backoff = 1
        while True:
            await asyncio.sleep(interval_s * backoff)
            backoff = min(backoff * 2, MAX_BACKOFF) if not await self.poll_once() else 1

    async def poll_once(self) -> bool:
        """One look and convergence; False when the store failed."""
        try:
            await self.refresh()
            names = self.source.models()
        except StoreUnavailable:
            return False
        except RepositoryError as exc:
            log.error("cannot read the repository: %s", exc)
            return True
        for name in names:
            try:
                await self.converge(name, *await self._configured(name, complete_only=True))
            except RepositoryError as exc:
                log.error("model %s: %s", name, exc)
        for gone in set(self.registry.names()) - set(names):
            await self.converge(gone, [])
        return not self.store_failure

    # ------------------------------------------------------------ explicit control

    async def load(self, name: str, asked: LoadConfig = AS_CONFIGURED) -> None:
        """Serve the versions the asked policy (default: the model's own) selects, routed by the
        asked rollout (default: the model's own); ControlError if one is refused (the versions
        and routing of before stay) or there is none."""
        try:
            await self.refresh()
            if asked == AS_CONFIGURED:  # the per-model file, an aborted rollout left out
                wanted, rollout = await self._configured(check_name(name), complete_only=False)
            else:
                wanted = await self.wanted(check_name(name), asked.policy)
                rollout = asked.rollout if asked.rollout is not None else self.source.rollout(name)
        except RepositoryError as exc:
            raise ControlError(str(exc)) from exc
        running = self.registry.rollout(name)
        if asked.rollout == Rollout() and asked.policy is None and running.version is not None:
            # An abort: the version on trial goes, the live one answers everything again.
            wanted = [c for c in wanted if c.version != running.version]
            self._aborted[name] = running
            log.info("rollout of %s aborted: version %s is unloaded", name, running.version)
        elif asked != AS_CONFIGURED:
            self._aborted.pop(name, None)
        if not wanted:
            raise ControlError(f"no version of model {name!r} matches its version_policy")
        problem = _rollout_problem(name, rollout, wanted)
        if problem:
            raise ControlError(problem)
        refused = await self.converge(name, wanted, rollout)
        if refused:
            raise ControlError("; ".join(refused))

    async def unload(self, name: str) -> None:
        """Serve no version of `name`; returns once the requests that held one are answered and
        it is freed."""
        try:
            known = check_name(name) in self.registry.names() or name in self.source.models()
        except RepositoryError as exc:
            raise ControlError(str(exc)) from exc
        if not known:
            raise ControlError(f"unknown model {name!r}")
        await self.converge(name, [])
        await asyncio.gather(*(t for t in list(self._retirements) if t.get_name() == name))

    # ------------------------------------------------------------ the index

    def index(self) -> list[Status]:
        statuses = [Status(*key, "LOADING") for key in sorted(self._loading)]
        statuses += [Status(v.ref.name, v.ref.version, "READY") for v in self.registry.all()]
        statuses += [Status(*key, "UNLOADING") for key in sorted(self._retiring)]
        listed = {(s.name, s.version) for s in statuses}
        statuses += [
            Status(key[0], key[1] or None, "UNAVAILABLE", reason)
            for key, reason in sorted(self._problems.items())
            if key not in listed
        ]
        listed |= {(s.name, s.version or "") for s in statuses}
        statuses += [
            Status(held.name, held.version, "UNAVAILABLE", "not selected by its version_policy")
            for held in self._held()
            if (held.name, held.version) not in listed
        ]
        return sorted(statuses, key=lambda s: (s.name, version_sort_key(s.version or "")))

    def _held(self) -> list[Candidate]:
        held: list[Candidate] = []
        try:
            for name in self.source.models():
                held += self.source.candidates(name)
        except RepositoryError:
            pass
        return held
