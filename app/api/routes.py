"""The REST routes: request schema -> the classify flow (app/infer/classify.py) -> response."""

import orjson
from fastapi import APIRouter, Response

from app import metrics
from app.api.errors import ERROR_RESPONSES
from app.api.schemas import ClassifyRequest, ClassifyResponse, Health, ModelInfo
from app.http.auth import ApiKeyRoute
from app.http.dependencies import READY, ClientGoneDep, LoadedDep
from app.infer.classify import Classified, classify_texts

router = APIRouter()
keyed = APIRouter(route_class=ApiKeyRoute)


def classified_body(classified: Classified) -> bytes:
    # orjson, not the response model: serializing through pydantic costs more than the model.
    return orjson.dumps({"model": classified.ref, "results": classified.predictions()})


@keyed.post(
    "/classify",
    response_model=ClassifyResponse,
    responses=ERROR_RESPONSES,
    summary="Classify texts",
    tags=["classify"],
)
async def classify(
    body: ClassifyRequest, loaded: LoadedDep, client_gone: ClientGoneDep
) -> Response:
    """Label each text; all texts of a request run batched, alongside concurrent requests."""
    # A well-formed request is answered by app/api/fast_path.py before it gets here, with the
    # same flow; this route answers the rest, and documents the endpoint.
    classified = await classify_texts(loaded, body.texts, client_gone)
    return Response(classified_body(classified), media_type="application/json")


@router.get("/model", response_model=ModelInfo, responses=ERROR_RESPONSES, tags=["model"])
async def model_info(loaded: LoadedDep) -> ModelInfo:
    artifacts = loaded.artifacts
    return ModelInfo(
        name=artifacts.name,
        version=artifacts.version,
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
async def prometheus_metrics() -> Response:
    content, media_type = metrics.render()
    return Response(content, media_type=media_type)
