"""The repository's layout (names, version numbers, the per-model file) and its two local sources
(app/repository/source.py): a directory (MODEL_REPOSITORY) or one model directory (MODEL_DIR),
both seen as models with candidate version folders.

Version folders are positive integers; any other name is ignored, so a writer can stage a folder
under another name and rename it in when it is complete (what training does). Model names are
checked, and no path outside the repository is ever read.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.artifacts import CONFIG_FILE, verify_artifacts
from app.repository.policy import PolicyError, VersionPolicy
from app.repository.rollout import Rollout, RolloutError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# The per-model file beside the version folders: {"version_policy": {...}, "rollout": {...}}.
MODEL_FILE = "model.json"


class RepositoryError(ValueError):
    """A name, path or per-model file the repository refuses; the message says why."""


@dataclass(frozen=True, order=True)
class VersionFolder:
    """A version in a local folder, where the service reads it."""

    name: str
    version: str
    path: Path


# What a listing says about a version's files: (file, tag, size) for each, sorted. Equal
# fingerprints: the same files, so a version refused (or verified) once need not be read again.
Fingerprint = tuple[tuple[str, str, int], ...]


@dataclass(frozen=True)
class Candidate:
    """A version the source holds, complete or not."""

    name: str
    version: str
    fingerprint: Fingerprint


def select(policy: VersionPolicy, available: list[Candidate]) -> list[Candidate]:
    by_number = {int(c.version): c for c in available}
    return [by_number[v] for v in policy.select(list(by_number))]


def local_fingerprint(path: Path) -> Fingerprint:
    try:
        return tuple(
            sorted((p.name, str(p.stat().st_mtime_ns), p.stat().st_size) for p in path.iterdir())
        )
    except OSError:
        return ()


def check_name(name: str) -> str:
    if not NAME.fullmatch(name) or ".." in name:
        raise RepositoryError(
            f"invalid model name {name!r}: 1-128 of A-Z a-z 0-9 . _ -, starting with a letter "
            "or digit"
        )
    return name


def version_sort_key(version: str) -> tuple[int, str]:
    """Integer versions in numeric order; a MODEL_DIR version (a timestamp string) by itself."""
    return (int(version), "") if version.isdigit() else (-1, version)


def read_model_file(name: str, raw: bytes) -> dict[str, Any]:
    """The per-model file's settings; RepositoryError naming it when they do not parse."""
    try:
        setting: Any = json.loads(raw)
    except ValueError as exc:
        raise RepositoryError(f"{name}/{MODEL_FILE}: {exc}") from exc
    if not isinstance(setting, dict):
        raise RepositoryError(f"{name}/{MODEL_FILE}: must be a JSON object")
    return setting


def policy_of(name: str, setting: dict[str, Any]) -> VersionPolicy:
    raw = setting.get("version_policy")
    try:
        return VersionPolicy.parse(raw) if raw is not None else VersionPolicy()
    except PolicyError as exc:
        raise RepositoryError(f"{name}/{MODEL_FILE}: {exc}") from exc


def rollout_of(name: str, setting: dict[str, Any]) -> Rollout:
    try:
        return Rollout.parse(setting.get("rollout", {}))
    except RolloutError as exc:
        raise RepositoryError(f"{name}/{MODEL_FILE}: {exc}") from exc


def _verified_folder(folder: VersionFolder) -> VersionFolder:
    verify_artifacts(folder.path)
    return folder


class Repository:
    """DIR/<name>/<version>/. Read as it is at each call: `refresh` has nothing to do."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def refresh(self) -> None:
        pass

    def describe(self) -> str:
        return f"MODEL_REPOSITORY {self.root}"

    def models(self) -> list[str]:
        if not self.root.is_dir():
            raise RepositoryError(f"MODEL_REPOSITORY {self.root} is not a directory")
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and NAME.fullmatch(p.name))

    def model_path(self, name: str) -> Path:
        path = (self.root / check_name(name)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise RepositoryError(f"model {name!r} is outside MODEL_REPOSITORY")
        return path

    def versions(self, name: str) -> list[VersionFolder]:
        """Every integer-named version folder of the model, ascending; the rest is ignored."""
        path = self.model_path(name)
        if not path.is_dir():
            raise RepositoryError(f"no model {name!r} in MODEL_REPOSITORY {self.root}")
        folders = [
            VersionFolder(name, str(int(p.name)), p.resolve())
            for p in path.iterdir()
            if p.is_dir() and p.name.isdigit() and int(p.name) > 0
        ]
        inside = [f for f in folders if f.path.is_relative_to(path)]
        return sorted(inside, key=lambda f: int(f.version))

    def candidates(self, name: str) -> list[Candidate]:
        return [
            Candidate(f.name, f.version, local_fingerprint(f.path)) for f in self.versions(name)
        ]

    def choose(
        self, name: str, available: list[Candidate], policy: VersionPolicy | None
    ) -> list[Candidate]:
        return select(policy or self.policy(name), available)

    def fetch(self, candidate: Candidate) -> VersionFolder:
        """The folder itself, once its files verify: a local version needs no copy."""
        path = self.model_path(candidate.name) / candidate.version
        return _verified_folder(VersionFolder(candidate.name, candidate.version, path))

    def policy(self, name: str) -> VersionPolicy:
        return policy_of(name, self._model_file(name))

    def rollout(self, name: str) -> Rollout:
        return rollout_of(name, self._model_file(name))

    def _model_file(self, name: str) -> dict[str, Any]:
        file = self.model_path(name) / MODEL_FILE
        if not file.exists():
            return {}
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise RepositoryError(f"{name}/{MODEL_FILE}: {exc}") from exc
        return read_model_file(name, raw)

    def wanted(self, name: str, policy: VersionPolicy | None = None) -> list[VersionFolder]:
        """The version folders `policy` (default: the model's own) selects."""
        folders = {int(f.version): f for f in self.versions(name)}
        chosen = (policy or self.policy(name)).select(list(folders))
        return [folders[v] for v in chosen]


class SingleModel:
    """MODEL_DIR: a repository of one model, its one version the directory itself, named and
    versioned by its config.json."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def refresh(self) -> None:
        pass

    def describe(self) -> str:
        return f"MODEL_DIR {self.directory}"

    def _identity(self) -> tuple[str, str]:
        try:
            config = json.loads((self.directory / CONFIG_FILE).read_text(encoding="utf-8"))
            return str(config["name"]), str(config["version"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RepositoryError(
                f"{self.directory / CONFIG_FILE}: cannot be read ({exc})"
            ) from exc

    def models(self) -> list[str]:
        return [self._identity()[0]]

    def versions(self, name: str) -> list[VersionFolder]:
        own, version = self._identity()
        if name != own:
            raise RepositoryError(f"no model {name!r}: MODEL_DIR holds {own!r}")
        return [VersionFolder(own, version, self.directory)]

    def candidates(self, name: str) -> list[Candidate]:
        return [
            Candidate(f.name, f.version, local_fingerprint(f.path)) for f in self.versions(name)
        ]

    def choose(
        self, name: str, available: list[Candidate], policy: VersionPolicy | None
    ) -> list[Candidate]:
        if policy is not None and policy != VersionPolicy():
            raise RepositoryError(
                "MODEL_DIR holds one version: a version_policy needs MODEL_REPOSITORY"
            )
        return available

    def fetch(self, candidate: Candidate) -> VersionFolder:
        return _verified_folder(VersionFolder(candidate.name, candidate.version, self.directory))

    def rollout(self, name: str) -> Rollout:
        return Rollout()


@dataclass(frozen=True)
class LoadConfig:
    """What a load request's `config` asks for; None: what the per-model file says."""

    policy: VersionPolicy | None = None
    rollout: Rollout | None = None


def parse_load_config(config: str) -> LoadConfig:
    """The version_policy and rollout of a load request's `config` (a JSON string)."""
    try:
        raw = json.loads(config)
    except ValueError as exc:
        raise RepositoryError(f"config is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise RepositoryError("config must be a JSON object")
    try:
        policy = VersionPolicy.parse(raw["version_policy"]) if "version_policy" in raw else None
        rollout = Rollout.parse(raw["rollout"]) if "rollout" in raw else None
    except (PolicyError, RolloutError) as exc:
        raise RepositoryError(str(exc)) from exc
    return LoadConfig(policy, rollout)
