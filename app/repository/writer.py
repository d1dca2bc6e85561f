"""Writing a new version into a repository without a reader ever seeing it half-written: into a
staging folder (not an integer name, so ignored), then renamed to the next version number."""

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from app.repository.layout import Repository, VersionFolder


def write_version(root: Path, name: str, write: Callable[[Path], None]) -> VersionFolder:
    """`write(folder)` fills a staging folder; it becomes version max + 1 of model `name`."""
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
            # Atomic, and allowed onto the empty folder just claimed; a reader polling meanwhile
            # saw an empty (incomplete) version, which it does not load.
            os.rename(staging, target)
            return VersionFolder(name, str(version), target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
