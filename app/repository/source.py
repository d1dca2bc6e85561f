"""What a repository source is to the service, wherever its models live: it lists models and
their candidate versions (each with a fingerprint that changes whenever one of its files does,
which is how it says what changed), reads the per-model settings, and fetches a version into a
local folder. The local directory and MODEL_DIR (app/repository/layout.py) and an object store
(app/repository/objects.py) are its implementations; the setting picks one (`source_for`,
app/lifecycle/state.py).
"""

from typing import Protocol

from app.repository.layout import Candidate, RepositoryError, VersionFolder
from app.repository.policy import VersionPolicy
from app.repository.rollout import Rollout


class StoreUnavailable(RepositoryError):
    """The store holding the repository cannot be reached or answers errors: what was loaded
    keeps serving; the message says why."""


class Source(Protocol):
    def refresh(self) -> None:
        """Look at the repository again (for a store: one listing); what the other methods say
        until the next refresh. StoreUnavailable when it cannot."""

    def models(self) -> list[str]: ...

    def candidates(self, name: str) -> list[Candidate]:
        """Every version of the model, ascending, complete or not; RepositoryError for an
        unknown model."""

    def choose(
        self, name: str, available: list[Candidate], policy: VersionPolicy | None
    ) -> list[Candidate]:
        """The versions `policy` (None: the model's own) selects among `available`."""

    def rollout(self, name: str) -> Rollout: ...

    def fetch(self, candidate: Candidate) -> VersionFolder:
        """The version in a local folder (for a store: downloaded into the cache, the files it
        already holds kept); ArtifactError when it is incomplete, StoreUnavailable when the store
        cannot be read. Blocking: run it off the event loop."""

    def describe(self) -> str:
        """Where it is, for logs and reasons."""
