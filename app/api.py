"""HTTP routes: request schema -> tokenizer -> batcher -> response."""

import time
from collections import Counter
from collections.abc import Callable

import orjson
from fastapi import APIRouter, Request, Response

from app import metrics
from app.artifacts import count_parameters
from app.batcher import BatchFailed, ClientGone, Overloaded, never_gone
from app.errors import ERROR_RESPONSES, ServiceError
from app.schemas import ClassifyRequest, ClassifyResponse, Health, ModelInfo
from app.service import Service

router = APIRouter()


def _service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def _ready_service(request: Request) -> Service:
    service = _service(request)
    if not service.ready:
        raise ServiceError(503, "not_ready", service.not_ready_reason or "not ready")
    return service


def _client_gone_check(request: Request) -> Callable[[], bool]:
    """Whether the client has disconnected, read from uvicorn's request cycle without awaiting.

    The ASGI way (awaiting receive() for http.disconnect) needs a task per request; this is an
    attribute read when the batcher takes the texts. Other servers: never reported gone.
    """
    cycle = getattr(request.receive, "__self__", None)
    if cycle is None or not hasattr(cycle, "disconnected"):
        return never_gone
    return lambda: bool(cycle.disconnected)


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    responses=ERROR_RESPONSES,
    summary="Classify texts",
    tags=["classify"],
)
async def classify(body: ClassifyRequest, request: Request) -> Response:
    """Label each text; all texts of a request run batched, alongside concurrent requests."""
    started = time.perf_counter()
    service = _ready_service(request)
    settings, artifacts = service.settings, service.artifacts
    assert artifacts is not None and service.batcher is not None
    texts = body.texts
    if len(texts) > settings.max_texts_per_request:
        raise ServiceError(
            422,
            "validation",
            f"texts: {len(texts)} texts, at most {settings.max_texts_per_request} per request",
        )
    encoded = []
    for i, text in enumerate(texts):
        if not text.strip():
            raise ServiceError(422, "validation", f"texts.{i}: empty or whitespace-only text")
        if len(text) > settings.max_text_chars:
            raise ServiceError(
                422,
                "validation",
                f"texts.{i}: {len(text)} characters, at most {settings.max_text_chars}",
            )
        item = artifacts.tokenizer.encode(text, artifacts.max_length)
        if item.truncated and settings.truncation == "reject":
            raise ServiceError(
                422,
                "validation",
                f"texts.{i}: {item.num_tokens} tokens, the model "
                f"reads at most {artifacts.max_length} (TRUNCATION=reject)",
            )
        encoded.append(item)
    try:
        probabilities = await service.batcher.submit(
            [item.ids for item in encoded], _client_gone_check(request)
        )
    except ClientGone:
        return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
    except Overloaded as exc:
        raise ServiceError(
            429, "overloaded", f"server busy: {exc}; retry later", headers={"Retry-After": "1"}
        ) from exc
    except BatchFailed as exc:
        raise ServiceError(500, "internal", f"inference failed (error id {exc.error_id})") from exc

    labels = artifacts.labels
    results = []
    counts: Counter[str] = Counter()
    for item, row in zip(encoded, probabilities.tolist(), strict=True):
        best = max(range(len(row)), key=row.__getitem__)
        counts[labels[best]] += 1
        results.append(
            {
                "label": labels[best],
                "score": row[best],
                "probabilities": dict(zip(labels, row, strict=True)),
                "truncated": item.truncated,
                "tokens": item.num_tokens,
            }
        )
    for label, count in counts.items():
        metrics.predictions(label).inc(count)
    truncated = sum(item.truncated for item in encoded)
    if truncated:
        metrics.TRUNCATED.inc(truncated)
    content = orjson.dumps(
        {"model": {"name": artifacts.name, "version": artifacts.version}, "results": results}
    )
    metrics.REQUEST_LATENCY.observe(time.perf_counter() - started)
    return Response(content, media_type="application/json")


@router.get("/model", response_model=ModelInfo, responses=ERROR_RESPONSES, tags=["model"])
async def model_info(request: Request) -> ModelInfo:
    service = _ready_service(request)
    artifacts, runner = service.artifacts, service.runner
    assert artifacts is not None and runner is not None
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
        device=str(runner.device),
    )


@router.get("/health/live", response_model=Health, tags=["health"])
async def live() -> Health:
    return Health(status="alive")


@router.get("/health/ready", response_model=Health, responses=ERROR_RESPONSES, tags=["health"])
async def ready(request: Request) -> Health:
    service = _ready_service(request)
    if service.shutting_down:
        raise ServiceError(503, "not_ready", "shutting down")
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
