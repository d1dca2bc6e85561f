"""Which versions of a model to serve, in Triton's JSON form: {"latest": {"num_versions": N}},
{"all": {}} or {"specific": {"versions": [..]}}."""

from dataclasses import dataclass
from typing import Any, Literal


class PolicyError(ValueError):
    """A version policy that does not parse; the message says why."""


@dataclass(frozen=True)
class VersionPolicy:
    kind: Literal["latest", "all", "specific"] = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> "VersionPolicy":
        if not isinstance(raw, dict) or len(raw) != 1:
            raise PolicyError(
                'version_policy must be one of {"latest": {"num_versions": N}}, {"all": {}}, '
                '{"specific": {"versions": [...]}}'
            )
        ((kind, body),) = raw.items()
        if kind == "all" and body in ({}, None):
            return cls("all")
        if kind == "latest" and isinstance(body, dict):
            count = body.get("num_versions", 1)
            if isinstance(count, int) and not isinstance(count, bool) and count >= 1:
                return cls("latest", num_versions=count)
            raise PolicyError(f"latest.num_versions must be a positive integer, got {count!r}")
        if kind == "specific" and isinstance(body, dict):
            versions = body.get("versions")
            if (
                isinstance(versions, list)
                and versions
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in versions)
            ):
                return cls("specific", versions=tuple(sorted(set(versions))))
            raise PolicyError("specific.versions must be a list of positive integers")
        raise PolicyError(f"unknown version_policy {kind!r}")

    def to_json(self) -> dict[str, Any]:
        if self.kind == "all":
            return {"all": {}}
        if self.kind == "latest":
            return {"latest": {"num_versions": self.num_versions}}
        return {"specific": {"versions": list(self.versions)}}

    def select(self, available: list[int]) -> list[int]:
        """The versions to serve out of the ones on disk, ascending."""
        present = sorted(set(available))
        if self.kind == "all":
            return present
        if self.kind == "latest":
            return present[-self.num_versions :]
        return [v for v in present if v in self.versions]
