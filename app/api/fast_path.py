"""POST /classify without FastAPI's per-request machinery, for the requests that need none of it.

At one core and 64 connections, FastAPI's routing, dependency solving and generic body handling
took more of a one-text request than the model did (py-spy, bench/run.py --profile). This ASGI
middleware answers a well-formed request for a loaded model itself: one JSON parse straight into
`ClassifyRequest`, then the same classify flow as the route. Everything else, a body that does not
validate, a streamed body, a missing API key, goes on to the FastAPI route with the body replayed, so
every error keeps the route's exact answer and the OpenAPI schema stays the route's.
"""

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.routes import classified_body
from app.api.schemas import ClassifyRequest
from app.errors import InferError
from app.http.auth import refusal
from app.http.disconnect import client_gone
from app.http.errors import domain_error_response
from app.http.headers import headers_of
from app.infer.classify import classify_request
from app.lifecycle.state import ServingState

_JSON_CONTENT = b"application/json"


class ClassifyFastPath:
    def __init__(
        self, app: ASGIApp, state: ServingState, route: APIRoute, api_key: bytes | None
    ) -> None:
        self.app = app
        self.state = state
        self.route = route  # the FastAPI route it stands in for: metrics label requests by it
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.route.path
            or scope["method"] != "POST"
            or not _sized_json(scope)
            or refusal(scope, self.api_key) is not None
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client left before it finished sending: nobody to answer
        try:
            request = ClassifyRequest.model_validate_json(body)
        except ValidationError:
            await self.app(scope, _replay(body, receive), send)
            return
        scope["route"] = self.route
        try:
            classified = await classify_request(
                self.state.registry,
                request.model,
                request.version,
                request.texts,
                client_gone(scope),
                Headers(scope=scope),
                "rest",
            )
        except InferError as exc:
            await domain_error_response(scope, exc)(scope, receive, send)
            return
        # The route's answer, sent as the two ASGI messages a Response object would send.
        content = classified_body(classified)
        headers = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", _JSON_CONTENT),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _sized_json(scope: Scope) -> bool:
    """A JSON body with a Content-Length (which the request middleware has held to
    MAX_BODY_BYTES): a streamed body is left to the route, whose body reading answers the limit's
    413."""
    headers = headers_of(scope)
    return headers.json_body and headers.content_length is not None


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
