"""One JSON error shape for every failure: {"error": {"type": ..., "message": ...}}."""

from typing import Literal

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


def error_response(
    status: int, type_: ErrorType, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    metrics.ERRORS.labels(type=type_).inc()
    return JSONResponse(
        {"error": {"type": type_, "message": message}}, status_code=status, headers=headers
    )


def _describe(request: Request, exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON"
    if "json" not in request.headers.get("content-type", ""):
        return 400, "request body must be JSON, sent with 'Content-Type: application/json'"
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg')}")
    return 422, "; ".join(parts)


# Starlette's own errors: unknown route or method, and the middleware's streamed-body limit.
_HTTP_ERROR_TYPES: dict[int, ErrorType] = {404: "not_found", 405: "not_found", 413: "too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.type, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _describe(request, exc)
        return error_response(status, "validation", message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = _HTTP_ERROR_TYPES.get(exc.status_code, "validation")
        # Keeps e.g. the Allow header of a 405 (RFC 9110).
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, type_, str(exc.detail), headers)


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "validation: the body is not valid JSON",
        401: "unauthorized: API_KEY is set and the request lacks it",
        413: "too_large: the body exceeds MAX_BODY_BYTES",
        422: "validation: wrong types, empty list, too many texts, empty or over-long text",
        429: "overloaded: the queue is full; retry after the Retry-After header's seconds",
        500: "internal: inference failed for this batch, or an unexpected error; the message "
        "carries an error id that is also in the log",
        503: "not_ready: the model is not loaded (yet), or the service is shutting down",
    }.items()
}
