"""The request headers the service acts on, read in one pass by the request middleware and kept
in the ASGI scope, so no later layer scans the headers again."""

from dataclasses import dataclass

from starlette.types import Scope

SCOPE_KEY = "app.headers"


def is_json_media_type(content_type: bytes) -> bool:
    """application/json or application/*+json, parameters ignored: the types FastAPI parses as
    JSON, and the one rule the service uses."""
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


@dataclass(slots=True)
class RequestHeaders:
    request_id: bytes | None  # X-Request-ID as sent, not yet validated
    content_length: int | None  # None: absent or not a number (a streamed body)
    json_body: bool  # Content-Type is a JSON media type
    credential: bytes  # the key sent as 'Authorization: Bearer <key>', else 'X-API-Key: <key>'


def read_headers(scope: Scope) -> RequestHeaders:
    request_id: bytes | None = None
    content_length: int | None = None
    json_body = False
    bearer: bytes | None = None
    api_key = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            json_body = is_json_media_type(value)
        elif name == b"content-length":
            content_length = int(value) if value.isdigit() else None
        elif name == b"x-request-id":
            request_id = value
        elif name == b"authorization":
            bearer = bytes(value[7:]) if value[:7].lower() == b"bearer " else None
        elif name == b"x-api-key":
            api_key = bytes(value)
    credential = bearer if bearer is not None else api_key
    return RequestHeaders(request_id, content_length, json_body, credential)


def headers_of(scope: Scope) -> RequestHeaders:
    """What the request middleware read; for an ASGI app used without it, read now."""
    headers: RequestHeaders | None = scope.get(SCOPE_KEY)
    return headers if headers is not None else read_headers(scope)
