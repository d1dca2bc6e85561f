"""Writing a new version into a repository without a reader ever seeing it half-written: into a
staging folder (not an integer name, so ignored), then renamed to the next version number. A
version published as the shadow of the live one is named so in the per-model file first, so a
poller never serves it live, even for one poll."""

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from app.repository.layout import MODEL_FILE, Repository, RepositoryError, VersionFolder


def write_version(
    root: Path, name: str, write: Callable[[Path], None], as_shadow: bool = False
) -> VersionFolder:
    """`write(folder)` fills a staging folder; it becomes version max + 1 of model `name`. With
    `as_shadow`, the per-model file makes it the shadow of the highest version before it (and
    has both loaded) before it is renamed in."""
    repository = Repository(root)
    model = repository.model_path(name)
    model.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model))
    try:
        write(staging)
        staging.chmod(0o755)  # mkdtemp's 0700 would hide it from a service running as another user
        while True:
            version = max((int(f.version) for f in repository.versions(name)), default=0) + 1
            target = model / str(version)
            try:
                target.mkdir()  # claims the number: exactly one writer creates it
            except FileExistsError:
                continue  # another writer took this number first: take the next one
            if as_shadow:
                _name_shadow(repository, name, version)
            # Atomic, and allowed onto the empty folder just claimed; a reader polling meanwhile
            # saw an empty (incomplete) version, which it does not load.
            os.rename(staging, target)
            return VersionFolder(name, str(version), target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _name_shadow(repository: Repository, name: str, version: int) -> None:
    """model.json: version_policy loads the live version and `version`, the rollout makes
    `version` the shadow; anything else in the file is kept. Replaced atomically."""
    earlier = [int(f.version) for f in repository.versions(name) if int(f.version) < version]
    if not earlier:
        (repository.model_path(name) / str(version)).rmdir()  # the number claimed, unused
        raise RepositoryError(f"model {name!r} has no version yet for a shadow to run beside")
    file = repository.model_path(name) / MODEL_FILE
    setting = json.loads(file.read_text(encoding="utf-8")) if file.exists() else {}
    setting["version_policy"] = {"specific": {"versions": [max(earlier), version]}}
    setting["rollout"] = {"shadow": str(version)}
    temporary = file.with_name(f".{MODEL_FILE}.{os.getpid()}")
    temporary.write_text(json.dumps(setting, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, file)
