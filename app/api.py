"""HTTP routes: request schema -> tokenizer -> queue -> model -> response (app/pipeline.py)."""

from fastapi import APIRouter, Response

from app import metrics
from app.artifacts import count_parameters
from app.dependencies import READY, ClientGoneDep, ModelDep
from app.errors import ERROR_RESPONSES
from app.pipeline import classify_response
from app.schemas import ClassifyRequest, ClassifyResponse, Health, ModelInfo

router = APIRouter()


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    responses=ERROR_RESPONSES,
    summary="Classify texts",
    tags=["classify"],
)
async def classify(body: ClassifyRequest, model: ModelDep, client_gone: ClientGoneDep) -> Response:
    """Label each text; all texts of a request run batched, alongside concurrent requests.

    A well-formed request is answered by app/classify_fast_path.py before it gets here, with
    the same function; this route answers the rest, and documents the endpoint.
    """
    return await classify_response(model, body.texts, client_gone)


@router.get("/model", response_model=ModelInfo, responses=ERROR_RESPONSES, tags=["model"])
async def model_info(model: ModelDep) -> ModelInfo:
    artifacts = model.artifacts
    return ModelInfo(
        name=artifacts.name,
        version=artifacts.version,
        labels=artifacts.labels,
        max_length=artifacts.max_length,
        vocab_size=len(artifacts.tokenizer),
        parameters=count_parameters(artifacts.model),
        architecture=artifacts.model.config.to_dict(),
        metrics=artifacts.config.get("metrics", {}),
        checksum=artifacts.checksum,
        device=model.engine.device,
        engine=model.engine.name,
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
