"""POST /classify without FastAPI's per-request machinery, for the requests that need none of it.

At one core and 64 connections, FastAPI's routing, dependency solving and generic body handling
took more of a one-text request than the model did (py-spy, bench/run.py --profile). This ASGI
middleware answers a well-formed request for a loaded model itself: one JSON parse straight into
`ClassifyRequest`, then the same pipeline as the route (app/pipeline.py). Everything else, a body
that does not validate, a service that is not ready, goes on to the FastAPI route with the body
replayed, so every error keeps the route's exact answer and the OpenAPI schema stays the route's.
"""

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.disconnect import client_gone
from app.errors import ServiceError, error_response
from app.pipeline import classify_response
from app.schemas import ClassifyRequest
from app.service import Service

PATH = "/classify"


class ClassifyFastPath:
    def __init__(self, app: ASGIApp, service: Service, route: APIRoute) -> None:
        self.app = app
        self.service = service
        self.route = route  # the FastAPI route it stands in for: metrics label requests by it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        model = self.service.model
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or model is None
            or not _has_json_body(scope)
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client left before it finished sending: nobody to answer
        try:
            texts = ClassifyRequest.model_validate_json(body).texts
        except ValidationError:
            await self.app(scope, _replay(body, receive), send)
            return
        scope["route"] = self.route
        response: Response
        try:
            response = await classify_response(model, texts, client_gone(scope))
        except ServiceError as exc:
            response = error_response(exc.status, exc.type, exc.message, exc.headers, PATH)
        await response(scope, receive, send)


def _has_json_body(scope: Scope) -> bool:
    """A JSON media type, as FastAPI reads one (application/json or application/*+json), with a
    Content-Length (which app.middleware has held to MAX_BODY_BYTES): a streamed body is left to
    the route, whose body reading answers the limit's 413."""
    media_type = b""
    sized = False
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type = value.split(b";", 1)[0].strip().lower()
        elif name == b"content-length":
            sized = True
    json = media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )
    return json and sized


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` that hands over the already-read body once, then the server's own messages."""
    pending = True

    async def replaying() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying
