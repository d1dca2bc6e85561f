"""How a new version of a model earns its place, in the JSON the per-model file and a load's
`config` carry beside `version_policy`:

    {"rollout": {"shadow": "3"}}
    {"rollout": {"canary": {"version": "3", "percent": 10, "sticky_header": "X-Caller"}}}
    {"rollout": {"shadow": "3", "guard": {"min_agreement": 0.9, "over_texts": 500}}}
    {"rollout": {}}                                    # no rollout: the live version answers all

Shadow: the live version answers every request, and the shadow scores the same texts off the
request's path, for comparison only. Canary: `percent` of the requests without a version go to
the candidate, the rest to the live version; with `sticky_header` present, a caller (that
header's value) always gets the same one. The live version is the highest loaded one other than
the version the rollout names. A guard aborts the rollout by itself once the two versions' label
agreement over the last `over_texts` compared texts is below `min_agreement` (a canary's answers
are compared with the live version's for this).
"""

import hashlib
from dataclasses import dataclass
from typing import Any


class RolloutError(ValueError):
    """A rollout setting that does not parse; the message says why."""


@dataclass(frozen=True)
class Canary:
    version: str
    percent: float
    sticky_header: str | None = None

    def takes(self, caller: str | None, draw: float) -> bool:
        """Whether this request goes to the candidate: by the caller's hash when there is a
        caller, so a caller always lands on the same side; else by `draw`, uniform in [0, 100)."""
        if caller is not None:
            digest = hashlib.sha256(caller.encode()).digest()
            draw = int.from_bytes(digest[:8], "big") / 2**64 * 100
        return draw < self.percent


@dataclass(frozen=True)
class Guard:
    min_agreement: float
    over_texts: int


@dataclass(frozen=True)
class Rollout:
    shadow: str | None = None
    canary: Canary | None = None
    guard: Guard | None = None

    @property
    def version(self) -> str | None:
        """The version on trial (the shadow or the candidate); None without a rollout."""
        return self.shadow or (self.canary.version if self.canary else None)

    @classmethod
    def parse(cls, raw: Any) -> "Rollout":
        if not isinstance(raw, dict):
            raise RolloutError('rollout must be an object: {"shadow": V}, {"canary": {...}} or {}')
        unknown = set(raw) - {"shadow", "canary", "guard"}
        if unknown:
            raise RolloutError(f"unknown rollout fields {sorted(unknown)}; use shadow or canary")
        if "shadow" in raw and "canary" in raw:
            raise RolloutError("a rollout names one version: shadow or canary, not both")
        guard = _guard(raw["guard"]) if "guard" in raw else None
        if "shadow" in raw:
            return cls(shadow=_version(raw["shadow"], "rollout.shadow"), guard=guard)
        if "canary" in raw:
            return cls(canary=_canary(raw["canary"]), guard=guard)
        if guard is not None:
            raise RolloutError("rollout.guard needs a shadow or a canary to guard")
        return cls()

    def to_json(self) -> dict[str, Any]:
        setting: dict[str, Any] = {}
        if self.shadow is not None:
            setting["shadow"] = self.shadow
        if self.canary is not None:
            canary: dict[str, Any] = {
                "version": self.canary.version,
                "percent": self.canary.percent,
            }
            if self.canary.sticky_header is not None:
                canary["sticky_header"] = self.canary.sticky_header
            setting["canary"] = canary
        if self.guard is not None:
            setting["guard"] = {
                "min_agreement": self.guard.min_agreement,
                "over_texts": self.guard.over_texts,
            }
        return setting


def _version(raw: Any, where: str) -> str:
    """A version number, given as "3" or 3."""
    text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    if not text.isdigit() or int(text) < 1:
        raise RolloutError(f"{where} must be a version number (a positive integer), got {raw!r}")
    return str(int(text))


def _canary(raw: Any) -> Canary:
    if not isinstance(raw, dict):
        raise RolloutError('rollout.canary must be {"version": V, "percent": P, ...}')
    unknown = set(raw) - {"version", "percent", "sticky_header"}
    if unknown:
        raise RolloutError(f"unknown rollout.canary fields {sorted(unknown)}")
    percent = raw.get("percent")
    if not isinstance(percent, int | float) or isinstance(percent, bool) or not 0 <= percent <= 100:
        raise RolloutError(
            f"rollout.canary.percent must be a number from 0 to 100, got {percent!r}"
        )
    header = raw.get("sticky_header")
    if header is not None and (not isinstance(header, str) or not header.strip()):
        raise RolloutError("rollout.canary.sticky_header must be a header name")
    return Canary(
        _version(raw.get("version"), "rollout.canary.version"),
        float(percent),
        header.strip().lower() if header is not None else None,
    )


def _guard(raw: Any) -> Guard:
    if not isinstance(raw, dict) or set(raw) != {"min_agreement", "over_texts"}:
        raise RolloutError('rollout.guard must be {"min_agreement": A, "over_texts": N}')
    agreement, texts = raw["min_agreement"], raw["over_texts"]
    if not isinstance(agreement, int | float) or isinstance(agreement, bool):
        raise RolloutError(f"rollout.guard.min_agreement must be a number, got {agreement!r}")
    if not 0 <= agreement <= 1:
        raise RolloutError(f"rollout.guard.min_agreement must be from 0 to 1, got {agreement!r}")
    if not isinstance(texts, int) or isinstance(texts, bool) or texts < 1:
        raise RolloutError(f"rollout.guard.over_texts must be a positive integer, got {texts!r}")
    return Guard(float(agreement), texts)
