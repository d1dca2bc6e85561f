"""One JSON error shape for every failure: {"error": {"type": ..., "message": ...}}; under /v2,
the Open Inference Protocol's own shape, {"error": "<message>"}."""

from collections.abc import Sequence
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import metrics

ErrorType = Literal[
    "validation", "too_large", "overloaded", "unauthorized", "not_ready", "not_found", "internal"
]


class ErrorDetail(BaseModel):
    type: ErrorType
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class ServiceError(Exception):
    def __init__(
        self, status: int, type_: ErrorType, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.headers = status, type_, message, headers


def is_oip_path(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


def error_response(
    status: int,
    type_: ErrorType,
    message: str,
    headers: dict[str, str] | None = None,
    path: str = "",
) -> JSONResponse:
    """The error in the shape its path's clients read: tritonclient and KServe expect a string."""
    metrics.ERRORS.labels(type=type_).inc()
    error = message if is_oip_path(path) else {"type": type_, "message": message}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _describe(request: Request, exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON"
    if "json" not in request.headers.get("content-type", ""):
        return 400, "request body must be JSON, sent with 'Content-Type: application/json'"
    return 422, describe_validation(errors)


def describe_validation(errors: Sequence[Any]) -> str:
    """Pydantic's errors as 'where: what', the first five."""
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg')}")
    return "; ".join(parts)


# Starlette's own errors: unknown route or method, and the middleware's streamed-body limit.
_HTTP_ERROR_TYPES: dict[int, ErrorType] = {404: "not_found", 405: "not_found", 413: "too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.type, exc.message, exc.headers, request.scope["path"])

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _describe(request, exc)
        return error_response(status, "validation", message, path=request.scope["path"])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = _HTTP_ERROR_TYPES.get(exc.status_code, "validation")
        # Keeps e.g. the Allow header of a 405 (RFC 9110).
        headers = dict(exc.headers) if exc.headers else None
        return error_response(
            exc.status_code, type_, str(exc.detail), headers, request.scope["path"]
        )


# status -> (type, when, an example message as the service words it), for the OpenAPI schema.
_DOCUMENTED_ERRORS: dict[int, tuple[ErrorType, str, str]] = {
    400: ("validation", "the body is not valid JSON", "request body is not valid JSON"),
    401: (
        "unauthorized",
        "API_KEY is set and the request lacks it",
        "missing or wrong API key (send 'Authorization: Bearer <key>' or 'X-API-Key: <key>')",
    ),
    413: (
        "too_large",
        "the body exceeds MAX_BODY_BYTES",
        "request body over 4194304 bytes (MAX_BODY_BYTES)",
    ),
    422: (
        "validation",
        "wrong types, empty list, too many texts, empty or over-long text",
        "texts.1: empty or whitespace-only text",
    ),
    429: (
        "overloaded",
        "the queue is full; retry after the Retry-After header's seconds",
        "server busy: 2048 texts queued (limit 2048); retry later",
    ),
    500: (
        "internal",
        "inference failed for this batch, or an unexpected error; the message carries an error "
        "id that is also in the log",
        "inference failed (error id 3f2a9c1b7d4e8a60)",
    ),
    503: (
        "not_ready",
        "the model is not loaded (yet), or the service is shutting down",
        "starting: model not loaded yet",
    ),
}

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {
        "model": ErrorBody,
        "description": f"{type_}: {when}",
        "content": {"application/json": {"example": {"error": {"type": type_, "message": msg}}}},
    }
    for status, (type_, when, msg) in _DOCUMENTED_ERRORS.items()
}
