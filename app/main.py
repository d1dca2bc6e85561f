"""FastAPI application: lifespan loads the model, routers serve it."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app import metrics
from app.api import router
from app.auth import ApiKeyMiddleware
from app.classify_fast_path import PATH, ClassifyFastPath
from app.docs_ui import install_docs_ui
from app.errors import install_error_handlers
from app.explain_api import install_explain
from app.middleware import RequestMiddleware
from app.oip import router as oip_router
from app.pages import install_playground
from app.service import Service
from app.settings import Settings, get_settings
from app.shutdown import before_exit_signals


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application; with no settings, they are read from the environment (uvicorn's factory
    mode calls it so, in each worker)."""
    settings = settings or get_settings()
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before the server listens: with several workers on one port, a worker that takes
        # connections has its model, so no request meets a half-started worker. A model that
        # fails to load does not stop the server; /health/ready then says why.
        service.load()
        try:
            with before_exit_signals(service.begin_shutdown, settings.shutdown_delay_s):
                yield
        finally:
            await asyncio.to_thread(service.drain)
            metrics.mark_process_dead()

    app = FastAPI(
        title="RNN text classifier",
        description="Classify texts with a trained RNN, through `/classify` or the Open Inference "
        "Protocol (KServe v2 / Triton) under `/v2`. Errors share one shape: "
        '`{"error": {"type": ..., "message": ...}}`; under `/v2`, the protocol\'s own: '
        '`{"error": "<message>"}`.',
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # app.docs_ui serves /docs with its own assets instead
        redoc_url=None,
    )
    app.state.service = service
    install_error_handlers(app)
    app.include_router(router)
    # Innermost of ours: the API key and the request middleware see fast-path requests too.
    app.add_middleware(
        ClassifyFastPath,
        service=service,
        route=next(r for r in router.routes if isinstance(r, APIRoute) and r.path == PATH),
    )
    if settings.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key.get_secret_value())
    # Added last, so outermost: every response, a 401 included, carries the request id.
    app.add_middleware(
        RequestMiddleware,
        max_body_bytes=settings.max_body_bytes,
        draining=lambda: service.readiness.state == "draining",
    )
    install_explain(app, settings.max_concurrent_explain)
    install_docs_ui(app)
    install_playground(app)
    app.include_router(oip_router)
    # LOG_LEVEL=warning silences the per-request access lines too, as uvicorn's own would be.
    logging.getLogger("app").setLevel(settings.log_level.upper())
    return app
