"""What routes receive, as typed FastAPI dependencies.

All `async def` although none awaits: FastAPI runs a plain `def` dependency in its threadpool,
a thread hop per dependency and request that cost more than the model's forward pass on one core
(py-spy, bench/run.py --profile: 63% of a one-CPU worker's samples at 64 connections).
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from app.http.disconnect import client_gone
from app.lifecycle.state import ServingState


async def get_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state


StateDep = Annotated[ServingState, Depends(get_state)]


async def require_ready(state: StateDep) -> None:
    """NotReady (a 503) with the reason unless the service takes traffic (the readiness probes:
    /health/ready and the v2 ones)."""
    state.require_ready()


async def get_client_gone(request: Request) -> Callable[[], bool]:
    return client_gone(request.scope)


ClientGoneDep = Annotated[Callable[[], bool], Depends(get_client_gone)]
READY = [Depends(require_ready)]
