"""One JSON error shape for every failure: {"error": {"type": ..., "message": ...}}; under /v2,
the Open Inference Protocol's own shape, {"error": "<message>"}.

The request path raises plain errors (app/errors.py); each protocol says which status each
one gets (app/api/errors.py, app/v2/errors.py), and the handlers here answer in the shape of the
protocol the path belongs to.
"""

from collections.abc import Callable, Sequence
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

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
# Everything under this prefix speaks the Open Inference Protocol, its errors included.
OIP_PREFIX = "/v2"
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


def is_oip_path(path: str) -> bool:
    return path == OIP_PREFIX or path.startswith(OIP_PREFIX + "/")


def error_response(
    status: int,
    type_: ErrorType,
    message: str,
    headers: dict[str, str] | None = None,
    path: str = "",
) -> JSONResponse:
    """The error in the shape its path's clients read: tritonclient and KServe expect a string."""
    metrics.errors(type_, "rest").inc()
    error = message if is_oip_path(path) else {"type": type_, "message": message}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def http_error_response(error: HttpError, path: str) -> JSONResponse:
    return error_response(error.status, error.type, error.message, error.headers, path)


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


def domain_error_response(exc: InferError, mapping: ErrorMapping, path: str) -> Response:
    if isinstance(exc, ClientGone):
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return http_error_response(mapping(exc), path)


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


def install_error_handlers(app: FastAPI, rest: ErrorMapping, oip: ErrorMapping) -> None:
    """Answer every error in its protocol's shape; the request path's errors as `rest` or, under
    /v2, as `oip` maps them."""

    @app.exception_handler(InferError)
    async def request_path_error(request: Request, exc: InferError) -> Response:
        path = request.scope["path"]
        return domain_error_response(exc, oip if is_oip_path(path) else rest, path)

    @app.exception_handler(HttpError)
    async def http_error(request: Request, exc: HttpError) -> JSONResponse:
        return http_error_response(exc, request.scope["path"])

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _describe(request, exc)
        return error_response(status, "validation", message, path=request.scope["path"])

    @app.exception_handler(StarletteHTTPException)
    async def framework_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = _HTTP_ERROR_TYPES.get(exc.status_code, "validation")
        # Keeps e.g. the Allow header of a 405 (RFC 9110).
        headers = dict(exc.headers) if exc.headers else None
        return error_response(
            exc.status_code, type_, str(exc.detail), headers, request.scope["path"]
        )
