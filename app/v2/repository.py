"""Triton's model repository extension, as tritonclient calls it: the index, load and unload
(with `config` carrying a version_policy, for rollback). Bodies are optional; errors are the
protocol's {"error": "<message>"}. These routes change what is served: they need ADMIN_API_KEY,
and load and unload need MODEL_CONTROL=explicit. No model files are taken through the API: a new
version is a folder in MODEL_REPOSITORY.
"""

from enum import Enum
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from app.http.auth import AdminKeyRoute
from app.http.dependencies import StateDep
from app.http.errors import HttpError
from app.lifecycle.control import ControlError, NotExplicitControl
from app.repository.layout import LoadConfig, RepositoryError, parse_load_config
from app.repository.source import StoreUnavailable
from app.v2.errors import OIP_PREFIX
from app.v2.schemas import OIP_ERROR_RESPONSES, OipError

TAGS: list[str | Enum] = ["open inference protocol (v2): model repository"]
router = APIRouter(prefix=f"{OIP_PREFIX}/repository", tags=TAGS, route_class=AdminKeyRoute)
# What a load or unload refused for a store outage tells the caller to wait before trying again.
STORE_RETRY_AFTER_S = 5

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": OipError, "description": "refused: the reason (the version served before, if "
          "any, keeps serving)"},
    401: {"model": OipError, "description": "ADMIN_API_KEY is set and the request lacks it"},
    **OIP_ERROR_RESPONSES,
}  # fmt: skip
# Load and unload: also refused when the server's mode forbids them.
_CONTROL_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_RESPONSES,
    409: {"model": OipError, "description": "MODEL_CONTROL is not explicit: this server does not "
          "load or unload on request"},
    503: {"model": OipError, "description": "the server is shutting down, or the store holding "
          "the repository cannot be read: nothing changed, try again later (Retry-After)"},
}  # fmt: skip


class IndexEntry(BaseModel):
    name: str
    version: str | None = None
    state: str = Field(description="READY, LOADING, UNLOADING or UNAVAILABLE")
    reason: str | None = Field(None, description="Why it is not served")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, "validation", "request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise HttpError(400, "validation", "request body must be a JSON object")
    return body


def _refused(exc: ControlError | RepositoryError) -> HttpError:
    """A refused load or unload: 409 when the server's mode forbids it, 503 (retry later) when
    the store holding the repository cannot be read, else 400 with the reason."""
    if isinstance(exc, StoreUnavailable):
        return HttpError(503, "not_ready", str(exc), {"Retry-After": str(STORE_RETRY_AFTER_S)})
    status = 409 if isinstance(exc, NotExplicitControl) else 400
    return HttpError(status, "refused", str(exc))


@router.post(
    "/index",
    response_model=list[IndexEntry],
    response_model_exclude_none=True,
    responses=_RESPONSES,
)
async def repository_index(request: Request, state: StateDep) -> list[IndexEntry]:
    """Every model and version the server knows and its state; `{"ready": true}`: READY only."""
    ready_only = (await _body(request)).get("ready") is True
    return [
        IndexEntry(name=s.name, version=s.version, state=s.state, reason=s.reason or None)
        for s in state.control.index()
        if not ready_only or s.state == "READY"
    ]


@router.post("/models/{name}/load", response_class=Response, responses=_CONTROL_RESPONSES)
async def repository_load(name: str, request: Request, state: StateDep) -> Response:
    """Serve the versions the model's version_policy selects, with its rollout (or the ones in
    `parameters.config`); returns once they are ready and routed, or refused."""
    parameters = (await _body(request)).get("parameters") or {}
    if any(str(key).startswith("file:") for key in parameters):
        raise HttpError(
            400, "refused", "model files are not taken through the API: add the version folder "
            "to MODEL_REPOSITORY"
        )  # fmt: skip
    config = parameters.get("config")
    try:
        asked = parse_load_config(config) if isinstance(config, str) else LoadConfig()
        await state.load_model(name, asked)
    except (ControlError, RepositoryError) as exc:
        raise _refused(exc) from exc
    return Response(status_code=200)


@router.post("/models/{name}/unload", response_class=Response, responses=_CONTROL_RESPONSES)
async def repository_unload(name: str, state: StateDep) -> Response:
    """Serve no version of the model; requests already holding one are answered first."""
    try:
        await state.unload_model(name)
    except (ControlError, StoreUnavailable) as exc:
        raise _refused(exc) from exc
    return Response(status_code=200)
