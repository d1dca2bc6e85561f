"""The ASGI application: its lifespan runs the service (app/service.py: the models, and gRPC
beside REST), the protocols' routers serve it.

`python -m app` serves it; so do `uvicorn app.main:create_app --factory`, `fastapi run` and
gunicorn with uvicorn workers (app/http/shutdown.py keeps their shutdown lossless too).
"""

import copy
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import SecretStr
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app import __version__
from app.api import explain, routes
from app.api.errors import REST_ERRORS
from app.api.fast_path import ClassifyFastPath
from app.http.errors import install_error_handlers
from app.http.middleware import RequestMiddleware
from app.http.shutdown import graceful_exit
from app.lifecycle.state import ServingState
from app.service import Service
from app.settings import Settings, get_settings
from app.ui.docs import install_docs_ui
from app.ui.pages import install_playground
from app.v2 import repository as v2_repository
from app.v2 import routes as v2_routes
from app.v2.errors import V2_ERRORS

DESCRIPTION = (
    "Classify texts with a trained RNN, through `/classify` or the Open Inference Protocol "
    "(KServe v2 / Triton) under `/v2`. Errors share one shape: "
    '`{"error": {"type": ..., "message": ...}}`; under `/v2`, the protocol\'s own: '
    '`{"error": "<message>"}`.'
)


class ServiceApp(FastAPI):
    """FastAPI with the service's request layer (request middleware, then the /classify fast path)
    in front of FastAPI's own per-request layers (telemetry, error and body-limit wrappers): every
    HTTP request passes the request middleware, and a well-formed /classify is answered there
    without the rest. Everything else goes on through FastAPI as usual."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.front is not None:
            scope["app"] = self
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def behind_front(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, with this server's limits (settings) declared where they apply."""
        before = self.openapi_schema
        schema = super().openapi()
        if schema is not before:  # new: the routes' own, shared with other apps; a copy
            schema = _declare_limits(copy.deepcopy(schema), self.state.serving.settings)
            self.openapi_schema = schema
        return schema

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        # The request middleware in front answers an unexpected error (a JSON 500 with an error id
        # that is also in the log); Starlette's own plain-text 500 would answer it first.
        return stack.app if isinstance(stack, ServerErrorMiddleware) else stack


def create_app(settings: Settings | None = None) -> ServiceApp:
    """The application; with no settings, they are read from the environment (uvicorn's factory
    mode calls it so, in each worker)."""
    settings = settings or get_settings()
    keys = {
        "API_KEY": _secret(settings.api_key),
        "ADMIN_API_KEY": _secret(settings.admin_api_key),
    }
    service = Service(settings, keys)
    state = service.state

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before the server listens: with several workers on one port, a worker that takes
        # connections has its model, so no request meets a half-started worker. A model that
        # fails to load does not stop the server; /health/ready then says why.
        await service.start()
        try:
            with graceful_exit(
                service.begin_shutdown, settings.shutdown_delay_s, service.stop_accepting
            ):
                yield
        finally:
            await service.drain()

    app = ServiceApp(
        title="RNN text classifier",
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # app/ui/docs.py serves /docs with its own assets instead
        redoc_url=None,
    )
    app.state.serving = state
    app.state.keys = keys
    install_error_handlers(app, [V2_ERRORS, REST_ERRORS])
    app.include_router(routes.keyed)
    app.include_router(routes.router)
    app.include_router(explain.router)
    install_docs_ui(app)
    install_playground(app)
    app.include_router(v2_routes.router)
    app.include_router(v2_routes.keyed)
    app.include_router(v2_repository.router)
    app.front = _front(app, settings, state, app.state.keys["API_KEY"])
    # LOG_LEVEL=warning silences the per-request access lines too, as uvicorn's own would be.
    logging.getLogger("app").setLevel(settings.log_level.upper())
    return app


def _declare_limits(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The texts a request may carry, and their length, as this server's settings bound them
    (MAX_TEXTS_PER_REQUEST, MAX_EXPLAIN_TEXTS, MAX_TEXT_CHARS): what it refuses, declared."""
    paths, components = schema["paths"], schema["components"]["schemas"]
    for path, max_texts in (
        ("/classify", settings.max_texts_per_request),
        ("/explain", settings.max_explain_texts),
    ):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        texts = components[body["$ref"].rsplit("/", 1)[-1]]["properties"]["texts"]
        texts["maxItems"] = max_texts
        texts["items"]["maxLength"] = settings.max_text_chars
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        tensor = body["properties"]["inputs"]["items"]["properties"]
        tensor["shape"]["prefixItems"][0]["maximum"] = settings.max_texts_per_request
        tensor["data"]["maxItems"] = settings.max_texts_per_request
        text, row = tensor["data"]["items"]["anyOf"]
        text["maxLength"] = row["items"]["maxLength"] = settings.max_text_chars
    return schema


def _secret(value: SecretStr | None) -> bytes | None:
    return value.get_secret_value().encode() if value is not None else None


def _front(
    app: ServiceApp, settings: Settings, state: ServingState, api_key: bytes | None
) -> ASGIApp:
    classify = next(
        r for r in routes.keyed.routes if isinstance(r, APIRoute) and r.endpoint is routes.classify
    )
    fast_path = ClassifyFastPath(app.behind_front, state, classify, api_key)
    # Outermost: every response, the fast path's included, carries the request id.
    return RequestMiddleware(
        fast_path, max_body_bytes=settings.max_body_bytes, draining=lambda: state.draining
    )
