"""Explicit control with several workers: a call lands on one worker, and returns only once every
worker serves the same versions.

The workers of `python -m app` share a directory (CONTROL_DIR_ENV, made by app/__main__.py). A
call records the model's new wanted state in `desired.json` with a new generation number (under
a file lock), applies it, and waits until every live worker has acknowledged that generation for
that model. Every worker watches `desired.json` and applies, in its own time, what is newer than
what it has; the latest entry of a model is all that counts, so workers converge whatever order
the calls came in.

A starting worker registers before it loads anything, and applies what `desired.json` holds
before it takes a request: a call made meanwhile waits for it, and none made earlier is missed
(a worker restarted after a crash starts with the versions the calls chose, not the defaults).
"""

import asyncio
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from app.lifecycle.control import ControlError, ModelControl
from app.repository.layout import LoadConfig
from app.repository.policy import VersionPolicy
from app.repository.rollout import Rollout

FOLLOW_INTERVAL_S = 0.1
FOLLOW_TIMEOUT_S = 120.0


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, value: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(value), encoding="utf-8")
    os.replace(temporary, path)  # readers see the old file or the new one, never half of one


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerSync:
    def __init__(self, directory: Path, control: ModelControl) -> None:
        self.directory, self.control = directory, control
        self.pid = os.getpid()
        self._desired = directory / "desired.json"
        self._ack_file = directory / f"ack-{self.pid}.json"
        self._acks: dict[str, dict[str, Any]] = {}  # model -> {"generation", "error"}
        self._lock = asyncio.Lock()

    def register(self) -> None:
        (self.directory / f"worker-{self.pid}").touch()
        _write_json(self._ack_file, {"models": self._acks})

    def unregister(self) -> None:
        for path in (self.directory / f"worker-{self.pid}", self._ack_file):
            path.unlink(missing_ok=True)

    async def load(self, name: str, asked: LoadConfig) -> None:
        policy, rollout = asked.policy, asked.rollout
        await self._change(
            name,
            {
                "load": True,
                "version_policy": policy.to_json() if policy else None,
                "rollout": rollout.to_json() if rollout else None,
            },
        )

    async def unload(self, name: str) -> None:
        await self._change(name, {"load": False})

    async def _change(self, name: str, entry: dict[str, Any]) -> None:
        generation = self._publish(name, entry)
        await self._apply(name)
        if self._acks[name]["error"]:
            raise ControlError(self._acks[name]["error"])
        await self._wait_for_all(name, generation)

    def _publish(self, name: str, entry: dict[str, Any]) -> int:
        with (self.directory / "desired.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            desired = _read_json(self._desired)
            generation = int(desired.get("generation", 0)) + 1
            models = desired.get("models", {})
            models[name] = {**entry, "generation": generation}
            _write_json(self._desired, {"generation": generation, "models": models})
        return generation

    async def _apply(self, name: str) -> None:
        """Apply the model's current entry (re-read under the lock: the latest one wins)."""
        async with self._lock:
            entry = _read_json(self._desired).get("models", {}).get(name)
            if entry is None or entry["generation"] <= self._acks.get(name, {}).get(
                "generation", 0
            ):
                return
            error = ""
            try:
                if entry["load"]:
                    policy, rollout = entry.get("version_policy"), entry.get("rollout")
                    asked = LoadConfig(
                        VersionPolicy.parse(policy) if policy else None,
                        Rollout.parse(rollout) if rollout is not None else None,
                    )
                    await self.control.load(name, asked)
                else:
                    await self.control.unload(name)
            except ControlError as exc:
                error = str(exc)
            self._acks[name] = {"generation": entry["generation"], "error": error}
            _write_json(self._ack_file, {"models": self._acks})

    async def catch_up(self) -> None:
        """Apply every model's entry newer than what this worker has."""
        models = _read_json(self._desired).get("models", {})
        for name, entry in models.items():
            if entry["generation"] > self._acks.get(name, {}).get("generation", 0):
                await self._apply(name)

    async def follow_forever(self) -> None:
        """Apply what other workers' calls change."""
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL_S)
            await self.catch_up()

    async def _wait_for_all(self, name: str, generation: int) -> None:
        deadline = time.monotonic() + FOLLOW_TIMEOUT_S
        while True:
            behind, errors = [], []
            for marker in self.directory.glob("worker-*"):
                pid = int(marker.name.split("-", 1)[1])
                if not _alive(pid):
                    continue
                ack = _read_json(self.directory / f"ack-{pid}.json").get("models", {}).get(name)
                if ack is None or ack["generation"] < generation:
                    behind.append(pid)
                elif ack["error"]:
                    errors.append(f"worker {pid}: {ack['error']}")
            if errors:
                raise ControlError("; ".join(errors))
            if not behind:
                return
            if time.monotonic() > deadline:
                raise ControlError(f"workers {behind} did not follow in {FOLLOW_TIMEOUT_S:.0f} s")
            await asyncio.sleep(FOLLOW_INTERVAL_S / 2)
