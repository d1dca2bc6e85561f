"""The REST routes: request schema -> the classify flow (app/infer/classify.py) -> response."""

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response

from app import metrics
from app.api.errors import ERROR_RESPONSES, MODEL_ERROR_RESPONSES
from app.api.results import predictions
from app.api.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    Health,
    ModelInfo,
    ModelsResponse,
    ModelState,
    RolloutState,
    ShadowComparison,
    VersionState,
)
from app.errors import InferError
from app.http.auth import ApiKeyRoute
from app.http.dependencies import READY, ClientGoneDep, StateDep
from app.infer.classify import Classified, classify_request
from app.lifecycle.state import ServingState

router = APIRouter()
keyed = APIRouter(route_class=ApiKeyRoute)


def classified_body(classified: Classified) -> bytes:
    # orjson, not the response model: serializing through pydantic costs more than the model.
    return orjson.dumps({"model": classified.ref, "results": predictions(classified)})


@keyed.post(
    "/classify",
    response_model=ClassifyResponse,
    responses=MODEL_ERROR_RESPONSES,
    summary="Classify texts",
    tags=["classify"],
)
async def classify(
    body: ClassifyRequest, request: Request, state: StateDep, client_gone: ClientGoneDep
) -> Response:
    """Label each text; all texts of a request run batched, alongside concurrent requests."""
    # A well-formed request is answered by app/api/fast_path.py before it gets here, with the
    # same flow; this route answers the rest, and documents the endpoint.
    classified = await classify_request(
        state.registry, body.model, body.version, body.texts, client_gone, request.headers, "rest"
    )
    return Response(classified_body(classified), media_type="application/json")


@router.get("/model", response_model=ModelInfo, responses=MODEL_ERROR_RESPONSES, tags=["model"])
async def model_info(
    state: StateDep,
    model: Annotated[
        str | None, Query(description="Default: the only model, or DEFAULT_MODEL")
    ] = None,
    version: Annotated[str | None, Query(description="Default: the highest loaded")] = None,
) -> ModelInfo:
    loaded = state.registry.resolve(model, version)
    artifacts = loaded.artifacts
    return ModelInfo(
        name=loaded.ref.name,
        version=loaded.ref.version,
        labels=artifacts.labels,
        max_length=artifacts.max_length,
        vocab_size=len(artifacts.tokenizer),
        parameters=artifacts.parameters,
        architecture=artifacts.architecture.to_dict(),
        metrics=artifacts.config.get("metrics", {}),
        checksum=artifacts.checksum,
        device=loaded.engine.device,
        engine=loaded.engine.name,
    )


@router.get("/models", response_model=ModelsResponse, tags=["model"])
async def models(state: StateDep) -> ModelsResponse:
    """Every model the server knows, each version's state, and which model is the default."""
    by_name: dict[str, list[VersionState]] = {}
    for status in state.control.index():
        by_name.setdefault(status.name, []).append(
            VersionState(version=status.version, state=status.state, reason=status.reason or None)
        )
    try:
        default = state.registry.resolve().ref.name
    except InferError:
        default = None
    return ModelsResponse(
        models=[
            ModelState(
                name=name,
                default=name == default,
                versions=versions,
                rollout=_rollout_state(state, name),
            )
            for name, versions in sorted(by_name.items())
        ]
    )


def _rollout_state(state: ServingState, name: str) -> RolloutState | None:
    rollout = state.registry.rollout(name)
    if rollout.version is None:
        return None
    live = state.registry.live(name)
    shadowing = state.registry.shadowing(name)
    return RolloutState(
        setting=rollout.to_json(),
        live=live.ref.version if live is not None else None,
        shadow=ShadowComparison(**shadowing.figures.to_json()) if shadowing else None,
    )


@router.get("/health/live", response_model=Health, tags=["health"])
async def live() -> Health:
    return Health(status="alive")


@router.get(
    "/health/ready",
    response_model=Health,
    responses=ERROR_RESPONSES,
    tags=["health"],
    dependencies=READY,
)
async def ready() -> Health:
    return Health(status="ready")


@router.get(
    "/metrics",
    tags=["metrics"],
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def prometheus_metrics(state: StateDep) -> Response:
    content, media_type = metrics.render(state.registry.served())
    return Response(content, media_type=media_type)
