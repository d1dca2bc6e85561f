"""The local copy of a store's versions (MODEL_CACHE_DIR): one folder per version, beside a note
of the store's tag for each file it holds, so a restart (or the next poll) reuses every file
whose tag and checksum still match instead of downloading it again. Bounded: past
MODEL_CACHE_MAX_MB the least recently fetched versions are removed (a loaded version is in
memory already, so that costs only a download at a later start). The per-model files are kept
too, so a start while the store is down can serve what the cache holds."""

import json
import os
import shutil
from pathlib import Path

ORIGIN_FILE = ".origin.json"  # {file: store tag} of the files in a version folder
MODEL_FILE_TAG = ".model.json.tag"


class VersionCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root, self.max_bytes = root, max_bytes

    def folder(self, name: str, version: str) -> Path:
        path = self.root / name / version
        path.mkdir(parents=True, exist_ok=True)
        return path

    def origin(self, folder: Path) -> dict[str, str]:
        try:
            tags = json.loads((folder / ORIGIN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}

    def set_origin(self, folder: Path, tags: dict[str, str]) -> None:
        """Written last, after the files (and rewritten at every fetch, which makes it the
        version's last use for the bound)."""
        temporary = folder / f"{ORIGIN_FILE}.{os.getpid()}.part"  # workers share the cache
        temporary.write_text(json.dumps(tags, sort_keys=True), encoding="utf-8")
        temporary.replace(folder / ORIGIN_FILE)

    def versions(self) -> dict[str, dict[str, dict[str, str]]]:
        """What the cache holds: {model: {version: {file: tag}}}, the complete folders only."""
        held: dict[str, dict[str, dict[str, str]]] = {}
        for origin in sorted(self.root.glob(f"*/*/{ORIGIN_FILE}")):
            held.setdefault(origin.parent.parent.name, {})[origin.parent.name] = self.origin(
                origin.parent
            )
        return held

    def save_model_file(self, name: str, raw: bytes, tag: str) -> None:
        model = self.root / name
        model.mkdir(parents=True, exist_ok=True)
        temporary = model / f"model.json.{os.getpid()}.part"
        temporary.write_bytes(raw)
        temporary.replace(model / "model.json")
        (model / MODEL_FILE_TAG).write_text(tag, encoding="utf-8")

    def model_file(self, name: str) -> tuple[str, bytes] | None:
        """(tag, contents) of the per-model file last read from the store, if any."""
        try:
            tag = (self.root / name / MODEL_FILE_TAG).read_text(encoding="utf-8")
            return tag, (self.root / name / "model.json").read_bytes()
        except OSError:
            return None

    def forget_model_file(self, name: str) -> None:
        for file in ("model.json", MODEL_FILE_TAG):
            (self.root / name / file).unlink(missing_ok=True)

    def trim(self, keep: Path) -> list[Path]:
        """Remove the least recently fetched versions but `keep` until the cache is within its
        bound; the ones removed."""
        folders = [o.parent for o in self.root.glob(f"*/*/{ORIGIN_FILE}")]
        sizes = {f: sum(p.stat().st_size for p in f.iterdir() if p.is_file()) for f in folders}
        total = sum(sizes.values())
        removed = []
        for folder in sorted(folders, key=lambda f: (f / ORIGIN_FILE).stat().st_mtime_ns):
            if total <= self.max_bytes:
                break
            if folder == keep:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= sizes[folder]
            removed.append(folder)
        return removed
