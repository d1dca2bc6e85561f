"""One JSON error shape for every failure: {"error": {"type": ..., "message": ...}}; under /v2,
the Open Inference Protocol's own shape, {"error": "<message>"}.

The request path raises plain errors (app/errors.py); each protocol says which status each
one gets (app/api/errors.py, app/v2/errors.py), and the handlers here answer in the shape of the
protocol the path belongs to.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from app import metrics
from app.errors import (
    BatchFailed,
    ClientGone,
    InferError,
    NotReady,
    Overloaded,
    UnknownModel,
)
from app.http.headers import headers_of

ErrorType = Literal[
    "validation",
    "too_large",
    "overloaded",
    "unauthorized",
    "not_ready",
    "not_found",
    "refused",
    "internal",
]
# nginx's "client closed request": logged and counted, never read by anyone.
CLIENT_CLOSED_REQUEST = 499


class ErrorDetail(BaseModel):
    type: ErrorType
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class HttpError(Exception):
    def __init__(
        self, status: int, type_: ErrorType, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.headers = status, type_, message, headers


# A protocol's answer to each error of the request path.
ErrorMapping = Callable[[InferError], HttpError]


@dataclass(frozen=True)
class ErrorShape:
    """How one protocol's clients read an error: under which paths (None: any), the value of the
    body's "error" for an error type and message, and the status of each plain error."""

    prefix: str | None
    error: Callable[[ErrorType, str], object]
    mapping: ErrorMapping

    def owns(self, path: str) -> bool:
        prefix = self.prefix
        return prefix is None or path == prefix or path.startswith(prefix + "/")


def shape_of(scope: Scope) -> ErrorShape:
    shapes: list[ErrorShape] = scope["app"].state.error_shapes
    path = scope["path"]
    return next(shape for shape in shapes if shape.owns(path))


def error_response(
    scope: Scope,
    status: int,
    type_: ErrorType,
    message: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The error in the shape the request's protocol reads."""
    metrics.errors(type_, "rest").inc()
    error = shape_of(scope).error(type_, message)
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def http_error_response(scope: Scope, error: HttpError) -> JSONResponse:
    return error_response(scope, error.status, error.type, error.message, error.headers)


def shared_http_error(exc: InferError) -> HttpError:
    """The status every HTTP protocol gives the request path's errors, but for invalid input
    (REST and v2 differ there, so each maps it first)."""
    if isinstance(exc, Overloaded):
        return HttpError(429, "overloaded", str(exc), {"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, NotReady):
        return HttpError(503, "not_ready", str(exc))
    if isinstance(exc, UnknownModel):
        return HttpError(404, "not_found", str(exc))
    if isinstance(exc, BatchFailed):
        return HttpError(500, "internal", str(exc))
    raise TypeError(f"no HTTP answer for {type(exc).__name__}") from exc


def domain_error_response(scope: Scope, exc: InferError) -> Response:
    if isinstance(exc, ClientGone):
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return http_error_response(scope, shape_of(scope).mapping(exc))


def describe_validation(errors: Sequence[Any]) -> str:
    """Pydantic's errors as 'where: what', the first five."""
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg')}")
    return "; ".join(parts)


def _describe(request: Request, exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON"
    if not headers_of(request.scope).json_body:
        return 400, "request body must be JSON, sent with 'Content-Type: application/json'"
    return 422, describe_validation(errors)


# Starlette's own errors: unknown route or method, and the middleware's streamed-body limit.
_HTTP_ERROR_TYPES: dict[int, ErrorType] = {404: "not_found", 405: "not_found", 413: "too_large"}


def install_error_handlers(app: FastAPI, shapes: list[ErrorShape]) -> None:
    """Answer every error in the shape of the protocol that owns its path (the first of `shapes`
    that does; the last should own every path)."""
    app.state.error_shapes = shapes

    @app.exception_handler(InferError)
    async def request_path_error(request: Request, exc: InferError) -> Response:
        return domain_error_response(request.scope, exc)

    @app.exception_handler(HttpError)
    async def http_error(request: Request, exc: HttpError) -> JSONResponse:
        return http_error_response(request.scope, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _describe(request, exc)
        return error_response(request.scope, status, "validation", message)

    @app.exception_handler(StarletteHTTPException)
    async def framework_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = _HTTP_ERROR_TYPES.get(exc.status_code, "validation")
        # Keeps e.g. the Allow header of a 405 (RFC 9110).
        headers = dict(exc.headers) if exc.headers else None
        return error_response(request.scope, exc.status_code, type_, str(exc.detail), headers)
