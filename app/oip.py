"""The Open Inference Protocol (KServe v2 / Triton) REST routes, on the same tokenizer, queue,
limits and metrics as /classify (app/pipeline.py): OIP and /classify requests share batches.

Errors under /v2 have the protocol's shape, {"error": "<message>"} (app/errors.py).
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.dependencies import READY, ClientGoneDep, ModelDep
from app.errors import ServiceError
from app.oip_codec import HEADER_LENGTH, TensorError
from app.oip_infer import decode_request, infer_response
from app.oip_schemas import (
    INFER_ERROR_RESPONSES,
    INFER_OPENAPI,
    INPUT,
    LABEL,
    OIP_ERROR_RESPONSES,
    PROBABILITIES,
    InferResponse,
    Live,
    ModelMetadata,
    ModelReady,
    Ready,
    ServerMetadata,
    TensorMetadata,
)
from app.pipeline import best_indices, encode_texts_off_loop, probabilities_for
from app.queue import ClientGone
from app.service import LoadedModel

router = APIRouter(prefix="/v2", tags=["open inference protocol (v2)"])

SERVER_NAME = "rnn-text-classifier"


def get_named_model(name: str, model: ModelDep) -> LoadedModel:
    """The model the path names, or 404: this server has one, named as in its config.json."""
    if name != model.artifacts.name:
        raise ServiceError(
            404, "not_found", f"unknown model {name!r}; this server has {model.artifacts.name!r}"
        )
    return model


NamedModelDep = Annotated[LoadedModel, Depends(get_named_model)]


def check_version(version: str, model: NamedModelDep) -> None:
    if version != model.artifacts.version:
        raise ServiceError(
            404,
            "not_found",
            f"unknown version {version!r} of model {model.artifacts.name!r}; it has "
            f"{model.artifacts.version!r}",
        )


# The /versions/{version} form of a route: the same handler after this check.
VERSIONED = [Depends(check_version)]


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
async def model_metadata(model: NamedModelDep) -> ModelMetadata:
    artifacts = model.artifacts
    return ModelMetadata(
        name=artifacts.name,
        versions=[artifacts.version],
        platform=model.engine.name,
        inputs=[TensorMetadata(name=INPUT, datatype="BYTES", shape=[-1])],
        outputs=[
            TensorMetadata(
                name=PROBABILITIES,
                datatype="FP32",
                shape=[-1, len(artifacts.labels)],
                parameters={"labels": artifacts.labels},
            ),
            TensorMetadata(name=LABEL, datatype="BYTES", shape=[-1]),
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
async def model_ready(model: NamedModelDep) -> ModelReady:
    return ModelReady(name=model.artifacts.name, ready=True)


_INFER_ROUTE = {
    "response_class": Response,
    "responses": {
        200: {
            "model": InferResponse,
            "description": "JSON, or (when an output is binary) a JSON header of "
            f"{HEADER_LENGTH} bytes followed by the binary outputs",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        **INFER_ERROR_RESPONSES,
    },
    "openapi_extra": INFER_OPENAPI,
    "summary": "Classify texts (Open Inference Protocol)",
}


@router.post("/models/{name}/infer", **_INFER_ROUTE)  # type: ignore[arg-type]
@router.post(
    "/models/{name}/versions/{version}/infer",
    dependencies=VERSIONED,
    **_INFER_ROUTE,  # type: ignore[arg-type]
)
async def infer(request: Request, model: NamedModelDep, client_gone: ClientGoneDep) -> Response:
    """Texts in the BYTES input TEXT ([N] or [N, 1]); outputs PROBABILITIES (FP32 [N, labels],
    in the metadata's label order) and LABEL (BYTES [N])."""
    # The body is read raw: with the binary tensor extension it is not JSON, and tritonclient
    # sends no Content-Type. The middleware has already bounded it by MAX_BODY_BYTES.
    try:
        decoded = decode_request(await request.body(), request.headers.get(HEADER_LENGTH))
    except TensorError as exc:
        raise ServiceError(400, "validation", str(exc)) from exc
    settings = model.settings
    try:
        encoded = await encode_texts_off_loop(model, decoded.texts, settings.max_texts_per_request)
    except ServiceError as exc:  # the pipeline's 422; a bad tensor is a 400 in this protocol
        raise ServiceError(400, exc.type, f"input {INPUT!r}: {exc.message}") from exc
    try:
        probabilities = await probabilities_for(model, encoded, client_gone)
    except ClientGone:
        return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
    labels = model.artifacts.labels
    best = [labels[index] for index in best_indices(model, encoded, probabilities)]
    return infer_response(
        model.artifacts.name, model.artifacts.version, decoded, probabilities, best
    )
