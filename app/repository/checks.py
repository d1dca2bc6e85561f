"""Which candidate versions are complete: fetched into a local folder (a store's into the cache)
and verified, every file there with the checksum config.json records. A version refused, whether
incomplete here or by the load's own checks, is not read again until its fingerprint changes (a
file added or replaced); one verified is not read again while its fingerprint stays the same.
"""

import logging

from app.core.artifacts import ArtifactError
from app.repository.layout import Candidate, Fingerprint, VersionFolder
from app.repository.source import Source

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (model, version)


class VersionChecks:
    def __init__(self, source: Source) -> None:
        self.source = source
        self._refused: dict[Key, Fingerprint] = {}
        self._verified: dict[Key, tuple[Fingerprint, VersionFolder]] = {}

    def fetch(self, candidate: Candidate) -> VersionFolder:
        """The version's verified local folder; ArtifactError (the file at fault) when it is
        incomplete, StoreUnavailable when its store cannot be read. Blocking."""
        key = (candidate.name, candidate.version)
        known = self._verified.get(key)
        if known is not None and known[0] == candidate.fingerprint and known[1].path.is_dir():
            return known[1]
        folder = self.source.fetch(candidate)
        self._verified[key] = (candidate.fingerprint, folder)
        return folder

    def complete(self, candidate: Candidate) -> bool:
        """Whether it can be loaded now: fetched and verified, and not refused as it is. An
        incomplete one is logged once per fingerprint and tried again when it changes."""
        key = (candidate.name, candidate.version)
        if self._refused.get(key) == candidate.fingerprint:
            return False
        try:
            self.fetch(candidate)
        except ArtifactError as exc:
            self.refuse(candidate)
            log.info("not loading %s %s yet: %s", candidate.name, candidate.version, exc)
            return False
        return True

    def refuse(self, candidate: Candidate) -> None:
        """Not to be tried again until one of its files changes."""
        key = (candidate.name, candidate.version)
        self._refused[key] = candidate.fingerprint
        self._verified.pop(key, None)
