"""What routes receive, as typed FastAPI dependencies.

All `async def` although none awaits: FastAPI runs a plain `def` dependency in its threadpool,
a thread hop per dependency and request that cost more than the model's forward pass on one core
(py-spy, bench/run.py --profile: 63% of a one-CPU worker's samples at 64 connections).
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from app.disconnect import client_gone
from app.errors import ServiceError
from app.service import LoadedModel, Service


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def get_loaded_model(service: Annotated[Service, Depends(get_service)]) -> LoadedModel:
    """The model, or 503 with the reason it is not loaded (starting, or refused)."""
    if service.model is None:
        raise ServiceError(503, "not_ready", service.readiness.reason)
    return service.model


async def require_ready(service: Annotated[Service, Depends(get_service)]) -> None:
    """503 with the reason unless the service takes traffic: starting, failed and draining are
    all not ready (the readiness probes: /health/ready and the v2 ones)."""
    if not service.readiness.ready:
        raise ServiceError(503, "not_ready", service.readiness.reason)


async def get_client_gone(request: Request) -> Callable[[], bool]:
    return client_gone(request.scope)


ServiceDep = Annotated[Service, Depends(get_service)]
ModelDep = Annotated[LoadedModel, Depends(get_loaded_model)]
ClientGoneDep = Annotated[Callable[[], bool], Depends(get_client_gone)]
READY = [Depends(require_ready)]
