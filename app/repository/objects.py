"""A repository in an object store (MODEL_REPOSITORY=s3://bucket/prefix): the same
<name>/<version>/ layout and per-model file as a directory, as keys.

One listing of the prefix per refresh (one request per 1,000 objects, for every model at once)
says what each version holds: its files' ETags and sizes are its fingerprint, so nothing is
downloaded to see what changed. A version is fetched into the cache (app/repository/cache.py)
only when the service wants it: config.json first, then the files it vouches for, each checked
against its checksum, the ones the cache holds already kept. A version whose config.json is not
there yet, or whose files are missing or do not match, is incomplete: what a publisher that
writes config.json last (app/repository/publish.py) leaves while it uploads.
When the store cannot be listed before any listing succeeded, the cache's own contents stand in
for the listing, so a restart during an outage serves what the cache holds.
"""

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from app.core.artifacts import CONFIG_FILE, ArtifactError, verify_artifacts
from app.repository.cache import VersionCache
from app.repository.layout import (
    MODEL_FILE,
    NAME,
    Candidate,
    RepositoryError,
    VersionFolder,
    policy_of,
    read_model_file,
    rollout_of,
    select,
)
from app.repository.policy import VersionPolicy
from app.repository.rollout import Rollout
from app.repository.source import StoreUnavailable
from app.repository.store import ObjectStore, StoredObject, StoreError

# model -> version -> file -> what the listing says of it
Listing = dict[str, dict[str, dict[str, StoredObject]]]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _listing(objects: list[StoredObject]) -> tuple[Listing, dict[str, StoredObject]]:
    """The versions (integer folders) and the per-model files; every other key is ignored."""
    versions: Listing = {}
    model_files: dict[str, StoredObject] = {}
    for stored in objects:
        parts = stored.key.split("/")
        if len(parts) < 2 or not NAME.fullmatch(parts[0]) or ".." in parts[0]:
            continue
        name = parts[0]
        versions.setdefault(name, {})
        if parts[1:] == [MODEL_FILE]:
            model_files[name] = stored
        elif len(parts) == 3 and parts[1].isdigit() and int(parts[1]) > 0:
            versions[name].setdefault(str(int(parts[1])), {})[parts[2]] = stored
    return versions, model_files


class ObjectRepository:
    def __init__(self, store: ObjectStore, cache: VersionCache) -> None:
        self.store, self.cache = store, cache
        self._versions: Listing | None = None  # None: never listed
        self._settings: dict[str, dict[str, Any] | RepositoryError] = {}
        self._fetching = threading.Lock()  # one fetch at a time: the cache's bound holds

    def describe(self) -> str:
        return f"MODEL_REPOSITORY {self.store.address}"

    # ------------------------------------------------------------ listing

    def refresh(self) -> None:
        try:
            versions, model_files = _listing(self.store.list())
            for name in versions:
                self._read_settings(name, model_files.get(name))
        except StoreError as exc:
            if self._versions is None:
                self._from_cache()
            raise StoreUnavailable(str(exc)) from exc
        self._versions = versions

    def _read_settings(self, name: str, stored: StoredObject | None) -> None:
        """The per-model file, downloaded only when its tag changed."""
        if stored is None:
            self._settings.pop(name, None)
            self.cache.forget_model_file(name)
            return
        cached = self.cache.model_file(name)
        if cached is not None and cached[0] == stored.etag and name in self._settings:
            return
        raw = cached[1] if cached and cached[0] == stored.etag else self.store.read(stored.key)
        self.cache.save_model_file(name, raw, stored.etag)
        self._parse_settings(name, raw)

    def _parse_settings(self, name: str, raw: bytes) -> None:
        try:
            self._settings[name] = read_model_file(name, raw)
        except RepositoryError as exc:
            self._settings[name] = exc  # this model's problem, told when it is asked for

    def _from_cache(self) -> None:
        versions: Listing = {}
        for name, held in self.cache.versions().items():
            versions[name] = {
                version: {
                    file: StoredObject(f"{name}/{version}/{file}", tag, 0)
                    for file, tag in tags.items()
                }
                for version, tags in held.items()
            }
            cached = self.cache.model_file(name)
            if cached is not None:
                self._parse_settings(name, cached[1])
        self._versions = versions

    # ------------------------------------------------------------ what it holds

    def models(self) -> list[str]:
        return sorted(self._versions or {})

    def _files(self, name: str) -> dict[str, dict[str, StoredObject]]:
        if self._versions is None or name not in self._versions:
            raise RepositoryError(f"no model {name!r} in {self.describe()}")
        return self._versions[name]

    def candidates(self, name: str) -> list[Candidate]:
        return [
            Candidate(name, version, tuple(sorted((f, o.etag, o.size) for f, o in files.items())))
            for version, files in sorted(self._files(name).items(), key=lambda v: int(v[0]))
        ]

    def _setting(self, name: str) -> dict[str, Any]:
        self._files(name)
        setting = self._settings.get(name, {})
        if isinstance(setting, RepositoryError):
            raise setting
        return setting

    def choose(
        self, name: str, available: list[Candidate], policy: VersionPolicy | None
    ) -> list[Candidate]:
        return select(policy or policy_of(name, self._setting(name)), available)

    def rollout(self, name: str) -> Rollout:
        return rollout_of(name, self._setting(name))

    # ------------------------------------------------------------ fetching

    def fetch(self, candidate: Candidate) -> VersionFolder:
        listed = self._files(candidate.name).get(candidate.version, {})
        with self._fetching:
            try:
                folder = self._download(candidate, listed)
            except StoreError as exc:
                raise StoreUnavailable(str(exc)) from exc
        self.cache.trim(keep=folder)
        verify_artifacts(folder)  # exactly the check a local version gets
        return VersionFolder(candidate.name, candidate.version, folder)

    def _download(self, candidate: Candidate, listed: dict[str, StoredObject]) -> Path:
        where = f"{self.store.address}/{candidate.name}/{candidate.version}"
        if CONFIG_FILE not in listed:
            raise ArtifactError(CONFIG_FILE, f"not in {where} (yet)")
        folder = self.cache.folder(candidate.name, candidate.version)
        origin = self.cache.origin(folder)
        tags = {CONFIG_FILE: listed[CONFIG_FILE].etag}
        if origin.get(CONFIG_FILE) != tags[CONFIG_FILE] or not (folder / CONFIG_FILE).exists():
            self._get(listed[CONFIG_FILE], folder / CONFIG_FILE)
        for file, checksum in _checksums(folder / CONFIG_FILE).items():
            if file not in listed:
                raise ArtifactError(file, f"not in {where} (yet)")
            tags[file] = listed[file].etag
            local = folder / file
            if origin.get(file) == tags[file] and local.exists() and _sha256(local) == checksum:
                continue  # the cache's copy is this very file
            self._get(listed[file], local)
            if _sha256(local) != checksum:
                local.unlink()
                raise ArtifactError(
                    file, "sha256 does not match config.json (corrupted or replaced)"
                )
        self.cache.set_origin(folder, tags)
        return folder

    def _get(self, stored: StoredObject, into: Path) -> None:
        """Streamed under a temporary name, renamed in once whole."""
        partial = into.with_name(f".{into.name}.{os.getpid()}.part")  # workers share the cache
        try:
            self.store.download(stored.key, partial)
            partial.replace(into)
        finally:
            partial.unlink(missing_ok=True)


def _checksums(config_file: Path) -> dict[str, str]:
    """The files config.json vouches for, with their sha256."""
    try:
        files = json.loads(config_file.read_bytes()).get("files")
    except (ValueError, AttributeError) as exc:
        raise ArtifactError(CONFIG_FILE, f"not valid JSON ({exc})") from exc
    if not isinstance(files, dict) or not all(
        isinstance(f, str) and "/" not in f and f not in ("", ".", "..") for f in files
    ):
        raise ArtifactError(CONFIG_FILE, "no files with checksums, or file names with a path")
    return {str(f): str(c) for f, c in files.items()}
