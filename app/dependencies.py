"""What routes receive, as typed FastAPI dependencies."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from app.disconnect import client_gone
from app.errors import ServiceError
from app.service import LoadedModel, Service


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def get_loaded_model(service: Annotated[Service, Depends(get_service)]) -> LoadedModel:
    """The model, or 503 with the reason it is not loaded (starting, or refused)."""
    if service.model is None:
        raise ServiceError(503, "not_ready", service.readiness.reason)
    return service.model


def get_client_gone(request: Request) -> Callable[[], bool]:
    return client_gone(request.scope)


ServiceDep = Annotated[Service, Depends(get_service)]
ModelDep = Annotated[LoadedModel, Depends(get_loaded_model)]
ClientGoneDep = Annotated[Callable[[], bool], Depends(get_client_gone)]
