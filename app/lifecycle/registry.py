"""The model versions being served, by name, and which one a request gets.

A request without a version gets the live one: the highest loaded, or while a rollout names a
version (app/repository/rollout.py), the highest other one, unless the canary sends it to the
candidate. Without a model, it gets the only one or DEFAULT_MODEL. It holds the version it got
until it is answered (`use`), so a version that is swapped out or unloaded meanwhile finishes it
first. A shadow rollout (or a guarded canary) sets the answering version's `on_answered` to a
comparison (app/lifecycle/shadow.py), which the classify flow feeds.
Touched on the event loop only.
"""

import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial

from app.errors import InvalidInput, NotReady, UnknownModel
from app.lifecycle.shadow import Shadowing
from app.lifecycle.version import LoadedVersion
from app.repository.layout import version_sort_key
from app.repository.rollout import Rollout
from app.version_metrics import Arm


class ModelRegistry:
    def __init__(self, default_model: str | None) -> None:
        self.default_model = default_model
        self._models: dict[str, dict[str, LoadedVersion]] = {}
        self._rollouts: dict[str, Rollout] = {}
        self._comparisons: dict[str, Shadowing] = {}  # by model, while a rollout compares
        self.not_ready_reason = "model not loaded yet"
        self._draw = random.Random()
        # Called with (model, why) when a rollout's guard trips: control aborts the rollout.
        self.on_guard_tripped: Callable[[str, str], None] = lambda name, reason: None

    def __bool__(self) -> bool:
        return bool(self._models)

    def names(self) -> list[str]:
        return sorted(self._models)

    def versions(self, name: str) -> list[LoadedVersion]:
        """Loaded versions of `name`, lowest first."""
        loaded = self._models.get(name, {})
        return [loaded[v] for v in sorted(loaded, key=version_sort_key)]

    def all(self) -> list[LoadedVersion]:
        return [v for name in self.names() for v in self.versions(name)]

    def served(self) -> set[tuple[str, str]]:
        return {(v.ref.name, v.ref.version) for v in self.all()}

    def add(self, version: LoadedVersion) -> None:
        """Serve it from the next request on."""
        self._models.setdefault(version.ref.name, {})[version.ref.version] = version
        version.metrics.set_state("ready")
        self._attach_shadow(version.ref.name)

    def remove(self, name: str, version: str) -> LoadedVersion | None:
        """No request gets it from now on; requests that hold it keep it."""
        loaded = self._models.get(name, {})
        removed = loaded.pop(version, None)
        if not loaded:
            self._models.pop(name, None)
        if removed is not None:
            self._attach_shadow(name)
        return removed

    # ------------------------------------------------------------ rollouts

    def set_rollout(self, name: str, rollout: Rollout) -> None:
        """From the next request on, `name` is served by this rollout (Rollout(): none)."""
        if rollout.version is None:
            self._rollouts.pop(name, None)
        else:
            self._rollouts[name] = rollout
        self._attach_shadow(name)

    def rollout(self, name: str) -> Rollout:
        return self._rollouts.get(name, Rollout())

    def live(self, name: str) -> LoadedVersion | None:
        """The version that answers requests without a version (the canary aside)."""
        versions = self.versions(name)
        if not versions:
            return None
        trial = self.rollout(name).version
        others = [v for v in versions if v.ref.version != trial]
        return (others or versions)[-1]

    def trial(self, name: str) -> LoadedVersion | None:
        """The shadow or canary candidate, while it is loaded beside a live version."""
        trial = self.rollout(name).version
        loaded = self._models.get(name, {})
        if trial is None or trial not in loaded or len(loaded) < 2:
            return None
        return loaded[trial]

    def shadowing(self, name: str) -> Shadowing | None:
        """The comparison of the rollout under way, if there is one."""
        return self._comparisons.get(name)

    def _attach_shadow(self, name: str) -> None:
        """Who feeds a comparison: the live version in a shadow rollout (the shadow scores), the
        candidate in a guarded canary (the live version scores); no other version. A comparison
        that no longer fits the routing (or the versions loaded) is stopped."""
        rollout, live, trial = self.rollout(name), self.live(name), self.trial(name)
        answering, scoring = None, None
        if trial is not None and live is not None and rollout.shadow is not None:
            answering, scoring = live, trial
        elif trial is not None and live is not None and rollout.guard is not None:
            answering, scoring = trial, live
        current = self._comparisons.get(name)
        if current is not None and (current.answering, current.scoring) != (answering, scoring):
            current.answering.on_answered = None
            current.stop()
            del self._comparisons[name]
        if answering is not None and scoring is not None and name not in self._comparisons:
            assert live is not None and trial is not None
            pair = (name, live.ref.version, trial.ref.version)
            tripped = partial(self.on_guard_tripped, name)
            comparison = Shadowing(answering, scoring, pair, rollout.guard, tripped)
            self._comparisons[name] = comparison
            answering.on_answered = comparison.offer
        self._publish_arms(name, live, trial)

    def _publish_arms(
        self, name: str, live: LoadedVersion | None, trial: LoadedVersion | None
    ) -> None:
        arm: Arm = "shadow" if self.rollout(name).shadow else "canary"
        for version in self.versions(name):
            version.metrics.set_arm(
                "live" if version is live else arm if version is trial else "named"
            )

    def resolve(
        self,
        name: str | None = None,
        version: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> LoadedVersion:
        """The version a request names, or else the live one; with `metadata` (an inference
        request's headers, for a sticky canary) the one the rollout routes it to. NotReady,
        UnknownModel, InvalidInput."""
        if not self._models:
            raise NotReady(self.not_ready_reason)
        name = name or self._default_name()
        loaded = self._models.get(name)
        if not loaded:
            raise UnknownModel(f"unknown model {name!r}; this server has {self.names()}")
        if version is None and metadata is not None:
            return self._route(name, metadata)
        if version is None:
            live = self.live(name)
            assert live is not None  # the model has a version: checked above
            return live
        found = loaded.get(version)
        if found is None:
            raise UnknownModel(
                f"unknown version {version!r} of model {name!r}; it has "
                f"{[v.ref.version for v in self.versions(name)]}"
            )
        return found

    def _route(self, name: str, metadata: Mapping[str, str]) -> LoadedVersion:
        live = self.live(name)
        assert live is not None  # the model has a version: resolve checked
        canary, candidate = self.rollout(name).canary, self.trial(name)
        if canary is None or candidate is None:
            return live
        # Lower-cased: HTTP headers match any case; gRPC metadata keys are lower-case.
        caller = metadata.get(canary.sticky_header.lower()) if canary.sticky_header else None
        return candidate if canary.takes(caller, self._draw.uniform(0, 100)) else live

    def _default_name(self) -> str:
        if self.default_model is not None:
            return self.default_model
        if len(self._models) == 1:
            return next(iter(self._models))
        raise InvalidInput(
            "model", f'this server has several models {self.names()}: say which with "model"'
        )

    @contextmanager
    def use(
        self,
        name: str | None = None,
        version: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Iterator[LoadedVersion]:
        """The resolved version, held (it is not freed) until the block ends."""
        resolved = self.resolve(name, version, metadata)
        resolved.acquire()
        try:
            yield resolved
        finally:
            resolved.release()

    def least_recently_used_idle(self, keep: str) -> LoadedVersion | None:
        """The idle version (no request holding it) used longest ago, of any model but `keep`."""
        idle = [v for v in self.all() if not v.in_flight and v.ref.name != keep]
        return min(idle, key=lambda v: v.last_used, default=None)
