"""How the REST API answers the request path's errors, and how the OpenAPI document lists them."""

from app.errors import InferError, InvalidInput
from app.http.errors import ErrorBody, ErrorShape, ErrorType, HttpError, shared_http_error


def rest_http_error(exc: InferError) -> HttpError:
    if isinstance(exc, InvalidInput):
        return HttpError(422, "validation", str(exc))
    return shared_http_error(exc)


# Every path no other protocol owns: {"error": {"type": ..., "message": ...}}.
REST_ERRORS = ErrorShape(
    prefix=None,
    error=lambda type_, message: {"type": type_, "message": message},
    mapping=rest_http_error,
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


def _documented(
    errors: dict[int, tuple[ErrorType, str, str]],
) -> dict[int | str, dict[str, object]]:
    return {
        status: {
            "model": ErrorBody,
            "description": f"{type_}: {when}",
            "content": {
                "application/json": {"example": {"error": {"type": type_, "message": msg}}}
            },
        }
        for status, (type_, when, msg) in sorted(errors.items())
    }


ERROR_RESPONSES = _documented(_DOCUMENTED_ERRORS)
# The routes that take a model (and version) to use: those can also be unknown.
MODEL_ERROR_RESPONSES = _documented(
    {
        **_DOCUMENTED_ERRORS,
        404: (
            "not_found",
            "no model (or version of it) of the name the request gives is served",
            "unknown model 'spam'; this server has ['rotten_tomatoes-gru']",
        ),
    }
)
