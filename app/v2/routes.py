"""The Open Inference Protocol (KServe v2 / Triton) REST routes, on the same classify flow as
/classify (app/infer/classify.py): the same tokenizer, limits, queue and metrics, so v2 and
/classify requests share batches.

Errors under /v2 have the protocol's shape, {"error": "<message>"} (app/v2/errors.py).
"""

from collections.abc import AsyncIterator
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.http.auth import ApiKeyRoute
from app.http.dependencies import READY, ClientGoneDep, StateDep
from app.http.errors import HttpError
from app.infer.classify import classify_texts
from app.lifecycle.version import LoadedVersion
from app.oip.contract import PROBABILITIES, SERVER_NAME, TensorError, input_specs, output_specs
from app.v2.codec import HEADER_LENGTH
from app.v2.errors import OIP_PREFIX
from app.v2.schemas import (
    INFER_ERROR_RESPONSES,
    INFER_OPENAPI,
    INFER_RESPONSE_HEADERS,
    OIP_ERROR_RESPONSES,
    InferResponse,
    Live,
    ModelMetadata,
    ModelReady,
    Ready,
    ServerMetadata,
    TensorMetadata,
)
from app.v2.tensors import decode_request, infer_response

TAGS: list[str | Enum] = ["open inference protocol (v2)"]
router = APIRouter(prefix=OIP_PREFIX, tags=TAGS)
keyed = APIRouter(prefix=OIP_PREFIX, tags=TAGS, route_class=ApiKeyRoute)


async def get_named_version(
    name: str, request: Request, state: StateDep
) -> AsyncIterator[LoadedVersion]:
    """The version the path names: the live one under /models/{name} (the highest loaded, or
    the highest other than a rollout's), that one under /models/{name}/versions/{version};
    UnknownModel (a 404) when there is none. Held until the
    response is made, so a version swapped out meanwhile answers first."""
    with state.registry.use(name, request.path_params.get("version")) as loaded:
        yield loaded


async def get_routed_version(
    name: str, request: Request, state: StateDep
) -> AsyncIterator[LoadedVersion]:
    """get_named_version for inference: without a version in the path, the one the model's
    rollout routes this request to (a canary's share, sticky by its header)."""
    version = request.path_params.get("version")
    with state.registry.use(name, version, request.headers) as loaded:
        yield loaded


NamedDep = Annotated[LoadedVersion, Depends(get_named_version)]
RoutedDep = Annotated[LoadedVersion, Depends(get_routed_version)]


async def declare_version(version: str) -> None:
    """The path's {version}, for the OpenAPI document (get_named_version reads it)."""


# The /versions/{version} form of a route: the same handler.
VERSIONED = [Depends(declare_version)]


@router.get("", response_model=ServerMetadata, responses=OIP_ERROR_RESPONSES)
async def server_metadata(request: Request) -> ServerMetadata:
    return ServerMetadata(
        name=SERVER_NAME, version=request.app.version, extensions=["binary_tensor_data"]
    )


@router.get("/health/live", response_model=Live, responses=OIP_ERROR_RESPONSES)
async def server_live() -> Live:
    return Live(live=True)


@router.get(
    "/health/ready", response_model=Ready, responses=OIP_ERROR_RESPONSES, dependencies=READY
)
async def server_ready() -> Ready:
    return Ready(ready=True)


@router.get(
    "/models/{name}",
    response_model=ModelMetadata,
    response_model_exclude_none=True,
    responses=OIP_ERROR_RESPONSES,
)
@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelMetadata,
    response_model_exclude_none=True,
    responses=OIP_ERROR_RESPONSES,
    dependencies=VERSIONED,
)
async def model_metadata(loaded: NamedDep, state: StateDep) -> ModelMetadata:
    labels = loaded.artifacts.labels
    return ModelMetadata(
        name=loaded.ref.name,
        versions=[v.ref.version for v in state.registry.versions(loaded.ref.name)],
        platform=loaded.engine.name,
        inputs=[
            TensorMetadata(name=s.name, datatype=s.datatype, shape=s.shape) for s in input_specs()
        ],
        outputs=[
            TensorMetadata(
                name=spec.name,
                datatype=spec.datatype,
                shape=spec.shape,
                parameters={"labels": labels} if spec.name == PROBABILITIES else None,
            )
            for spec in output_specs(len(labels))
        ],
    )


@router.get(
    "/models/{name}/ready",
    response_model=ModelReady,
    responses=OIP_ERROR_RESPONSES,
    dependencies=READY,
)
@router.get(
    "/models/{name}/versions/{version}/ready",
    response_model=ModelReady,
    responses=OIP_ERROR_RESPONSES,
    dependencies=[*VERSIONED, *READY],
)
async def model_ready(loaded: NamedDep) -> ModelReady:
    return ModelReady(name=loaded.ref.name, ready=True)


_INFER_ROUTE = {
    "response_class": Response,
    "responses": {
        200: {
            "model": InferResponse,
            "description": "JSON, or (when an output is binary) a JSON header of "
            f"{HEADER_LENGTH} bytes followed by the binary outputs",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            "headers": INFER_RESPONSE_HEADERS,
        },
        **INFER_ERROR_RESPONSES,
    },
    "openapi_extra": INFER_OPENAPI,
    "summary": "Classify texts (Open Inference Protocol)",
}


@keyed.post("/models/{name}/infer", **_INFER_ROUTE)  # type: ignore[arg-type]
@keyed.post(
    "/models/{name}/versions/{version}/infer",
    dependencies=VERSIONED,
    **_INFER_ROUTE,  # type: ignore[arg-type]
)
async def infer(request: Request, loaded: RoutedDep, client_gone: ClientGoneDep) -> Response:
    """Texts in the BYTES input TEXT ([N] or [N, 1]); outputs PROBABILITIES (FP32 [N, labels],
    in the metadata's label order) and LABEL (BYTES [N])."""
    # The body is read raw: with the binary tensor extension it is not JSON, and tritonclient
    # sends no Content-Type. The middleware has already bounded it by MAX_BODY_BYTES.
    try:
        decoded = decode_request(await request.body(), request.headers.get(HEADER_LENGTH))
    except TensorError as exc:
        raise HttpError(400, "validation", str(exc)) from exc
    classified = await classify_texts(loaded, decoded.texts, client_gone, "rest")
    return infer_response(
        classified.ref, decoded, classified.probabilities, classified.best_labels()
    )
