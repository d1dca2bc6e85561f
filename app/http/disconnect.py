"""Whether a request's client has gone away, readable without awaiting anything.

The ASGI way (awaiting receive() for http.disconnect) needs a task per request; this is an
attribute read when the queue takes the texts. It reads uvicorn's request cycle, and only here;
on other servers a client is never reported gone (texts then simply run).
"""

from collections.abc import Callable

from starlette.types import Receive, Scope

from app.batching.queue import never_gone

# Where the middleware leaves the probe for the routes: a key of the request's ASGI scope.
SCOPE_KEY = "app.client_gone"


def disconnect_probe(receive: Receive) -> Callable[[], bool]:
    """A probe for the server's own `receive` (before any middleware wraps it)."""
    cycle = getattr(receive, "__self__", None)  # uvicorn: receive is RequestResponseCycle.receive
    if cycle is None or not hasattr(cycle, "disconnected"):
        return never_gone
    return lambda: bool(cycle.disconnected)


def client_gone(scope: Scope) -> Callable[[], bool]:
    probe: Callable[[], bool] = scope.get(SCOPE_KEY, never_gone)
    return probe
