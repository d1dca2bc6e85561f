"""The outermost layer of every HTTP request: it reads the headers once (app/http/headers.py),
then adds the request id, bounds the body, keeps the latency and in-flight metrics and the access
log, sets the client-gone probe, and answers a JSON 500 for anything unexpected.

Plain ASGI, not BaseHTTPMiddleware: it runs on every request of a high-throughput service, so it
adds one header scan, one wrapped `send` and no extra task (about 5 us per request, measured
against a bare ASGI app).
"""

import asyncio
import itertools
import logging
import random
import re
import time
import uuid
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.http.disconnect import SCOPE_KEY as CLIENT_GONE_KEY
from app.http.disconnect import disconnect_probe
from app.http.errors import error_response
from app.http.headers import SCOPE_KEY as HEADERS_KEY
from app.http.headers import read_headers

log = logging.getLogger("app.access")

# Echoed into a response header and the log, so only characters safe in both.
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")


# Generated ids: a random prefix per process, then a counter. Unique is all they need to be (they
# are labels, not secrets), in the size of a uuid4's hex, for a fraction of its cost.
_ID_PREFIX = f"{random.getrandbits(64):016x}"
_ID_COUNTER = itertools.count()


def _request_id(sent: bytes | None) -> bytes:
    if sent is not None and _VALID_REQUEST_ID.fullmatch(sent):
        return sent
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}".encode()


class _Response:
    """The response as it goes out: its status, and the headers every response gets."""

    def __init__(self, send: Send, request_id: bytes, draining: Callable[[], bool]) -> None:
        self._send, self.request_id, self._draining = send, request_id, draining
        self.status = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = [*message.get("headers", ()), (b"x-request-id", self.request_id)]
            if self._draining():  # keep-alive clients reconnect, to a replica that stays
                headers.append((b"connection", b"close"))
            message["headers"] = headers
        await self._send(message)


class RequestMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, draining: Callable[[], bool]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.draining = draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = scope[HEADERS_KEY] = read_headers(scope)
        response = _Response(send, _request_id(headers.request_id), self.draining)
        # Probed on the server's own receive: the body-limit wrapper below would hide it.
        scope[CLIENT_GONE_KEY] = disconnect_probe(receive)
        metrics.in_flight("rest").inc()
        try:
            await self._bounded(scope, receive, response.send, headers.content_length)
        except asyncio.CancelledError:
            # uvicorn cancels what still runs SHUTDOWN_TIMEOUT_S after SIGTERM: answer in our
            # shape, retryable elsewhere, rather than with its plain-text 500.
            if not response.status:
                message = "shutting down: the request did not finish in time"
                await error_response(scope, 503, "not_ready", message)(
                    scope, receive, response.send
                )
            raise
        except Exception:
            await _internal_error(scope, receive, response)
        finally:
            metrics.in_flight("rest").dec()
            _record(scope, response, time.perf_counter() - started)

    async def _bounded(
        self, scope: Scope, receive: Receive, send: Send, content_length: int | None
    ) -> None:
        """The app, with the body held to MAX_BODY_BYTES."""
        if content_length is not None and content_length > self.max_body_bytes:
            # Answered unread: the server discards the body instead of handing it to us.
            message = self._too_large_message()
            await error_response(scope, 413, "too_large", message)(scope, receive, send)
        elif content_length is None and scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, self._limited(receive), send)
        else:
            # The HTTP parser never delivers more than Content-Length bytes.
            await self.app(scope, receive, send)

    def _limited(self, receive: Receive) -> Receive:
        """`receive` that stops a streamed (chunked) body as soon as it passes the limit."""
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI re-raises HTTPException from body reading; the handlers answer 413.
                    raise HTTPException(413, self._too_large_message())
            return message

        return receive_limited

    def _too_large_message(self) -> str:
        return f"request body over {self.max_body_bytes} bytes (MAX_BODY_BYTES)"


async def _internal_error(scope: Scope, receive: Receive, response: _Response) -> None:
    error_id = uuid.uuid4().hex[:16]
    log.exception(
        "unhandled error %s in %s %s (request id %s)",
        error_id,
        scope["method"],
        scope["path"],
        response.request_id.decode(),
    )
    if response.status:  # headers are out: the server closes the connection instead
        return
    message = f"internal error (error id {error_id})"
    await error_response(scope, 500, "internal", message)(scope, receive, response.send)


def _record(scope: Scope, response: _Response, elapsed: float) -> None:
    """The request's latency by route and status class, and its access line."""
    route = scope.get("route")
    status = response.status
    metrics.request_latency(
        route.path if route is not None else "unmatched", f"{status // 100}xx"
    ).observe(elapsed)
    if not log.isEnabledFor(logging.INFO):
        return
    duration_ms = elapsed * 1000
    request_id = response.request_id.decode()
    log.info(
        "%s %s %d %.1fms request_id=%s",
        scope["method"],
        scope["path"],
        status,
        duration_ms,
        request_id,
        # The same facts as fields, for LOG_FORMAT=json (app/logs.py).
        extra={
            "request_id": request_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(duration_ms, 1),
        },
    )
