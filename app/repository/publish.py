"""Publishing a new version into an object store without a poller ever seeing it complete before
it is: the version number is claimed with a conditional write (a claim object created only if
none exists, S3's If-None-Match: two publishers never take the same number), the files are
uploaded, and config.json goes last: until it is there the version is incomplete, and once it is,
every file it vouches for is there already. A version published as the shadow of the live one is
named so in the per-model file before its config.json, so no poll serves it live.
"""

import json
import os
import socket
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from app.core.artifacts import CONFIG_FILE
from app.repository.layout import MODEL_FILE, RepositoryError, check_name
from app.repository.store import ObjectStore, StoreAddress, endpoint_from_env

CLAIM_FILE = ".claim"  # in a version folder: who took the number (not a model file)
EXTRA = "rnn-text-classifier[s3]"


def _numbers(store: ObjectStore, name: str) -> dict[int, set[str]]:
    """The model's versions in the store (claimed or complete), with the files each holds."""
    found: dict[int, set[str]] = {}
    for stored in store.list(f"{name}/"):
        parts = stored.key.split("/")
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) > 0:
            found.setdefault(int(parts[1]), set()).add(parts[2])
    return found


def _claim(store: ObjectStore, name: str, after: int) -> int:
    """The first free number above `after`, taken: exactly one publisher creates its claim."""
    note = json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "at": datetime.now(UTC).isoformat()}
    ).encode()
    version = after + 1
    while not store.upload(f"{name}/{version}/{CLAIM_FILE}", note, create=True):
        version += 1  # another publisher took it first: take the next one
    return version


def publish_version(
    url: str, name: str, write: Callable[[Path], None], as_shadow: bool = False
) -> str:
    """`write(folder)` fills a local staging folder; its files become version max + 1 of model
    `name` under `url` (s3://bucket/prefix). With `as_shadow`, the per-model file makes it the
    shadow of the highest complete version before it. The version's URL."""
    store = ObjectStore(StoreAddress.parse(url), endpoint_from_env(), EXTRA)
    check_name(name)
    with tempfile.TemporaryDirectory(prefix="publish-") as staging:
        folder = Path(staging)
        write(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise RepositoryError(f"nothing to publish: no {CONFIG_FILE} was written")
        existing = _numbers(store, name)
        complete = [n for n, held in existing.items() if CONFIG_FILE in held]
        if as_shadow and not complete:
            raise RepositoryError(f"model {name!r} has no version yet for a shadow to run beside")
        version = _claim(store, name, max(existing, default=0))
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != CONFIG_FILE)
        for file in files:
            store.upload(f"{name}/{version}/{file.name}", file)
        if as_shadow:
            _name_shadow(store, name, max(complete), version)
        store.upload(f"{name}/{version}/{CONFIG_FILE}", folder / CONFIG_FILE)  # the commit point
    return f"{store.address}/{name}/{version}"


def _name_shadow(store: ObjectStore, name: str, live: int, version: int) -> None:
    """model.json: version_policy loads `live` and `version`, the rollout makes `version` the
    shadow; anything else in the file is kept."""
    key = f"{name}/{MODEL_FILE}"
    held = any(o.key == key for o in store.list(key))
    setting = json.loads(store.read(key)) if held else {}
    setting["version_policy"] = {"specific": {"versions": [live, version]}}
    setting["rollout"] = {"shadow": str(version)}
    store.upload(key, (json.dumps(setting, indent=2) + "\n").encode())
