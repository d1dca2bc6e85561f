"""The model versions being served, by name, and which one a request gets.

A request without a version gets the highest one loaded; without a model, the only one or
DEFAULT_MODEL. It holds the version it got until it is answered (`use`), so a version that is
swapped out or unloaded meanwhile finishes it first. Touched on the event loop only.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from app.infer.errors import InvalidInput, NotReady, UnknownModel
from app.infer.version import LoadedVersion
from app.repository.layout import version_sort_key


class ModelRegistry:
    def __init__(self, default_model: str | None) -> None:
        self.default_model = default_model
        self._models: dict[str, dict[str, LoadedVersion]] = {}
        self.not_ready_reason = "model not loaded yet"

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

    def remove(self, name: str, version: str) -> LoadedVersion | None:
        """No request gets it from now on; requests that hold it keep it."""
        loaded = self._models.get(name, {})
        removed = loaded.pop(version, None)
        if not loaded:
            self._models.pop(name, None)
        return removed

    def resolve(self, name: str | None = None, version: str | None = None) -> LoadedVersion:
        """The version a request names (or the default); NotReady, UnknownModel, InvalidInput."""
        if not self._models:
            raise NotReady(self.not_ready_reason)
        name = name or self._default_name()
        loaded = self._models.get(name)
        if not loaded:
            raise UnknownModel(f"unknown model {name!r}; this server has {self.names()}")
        if version is None:
            return self.versions(name)[-1]
        found = loaded.get(version)
        if found is None:
            raise UnknownModel(
                f"unknown version {version!r} of model {name!r}; it has "
                f"{[v.ref.version for v in self.versions(name)]}"
            )
        return found

    def _default_name(self) -> str:
        if self.default_model is not None:
            return self.default_model
        if len(self._models) == 1:
            return next(iter(self._models))
        raise InvalidInput(
            "model", f'this server has several models {self.names()}: say which with "model"'
        )

    @contextmanager
    def use(self, name: str | None = None, version: str | None = None) -> Iterator[LoadedVersion]:
        """The resolved version, held (it is not freed) until the block ends."""
        resolved = self.resolve(name, version)
        resolved.acquire()
        try:
            yield resolved
        finally:
            resolved.release()

    def least_recently_used_idle(self, keep: str) -> LoadedVersion | None:
        """The idle version (no request holding it) used longest ago, of any model but `keep`."""
        idle = [v for v in self.all() if not v.in_flight and v.ref.name != keep]
        return min(idle, key=lambda v: v.last_used, default=None)
