"""A shutdown that loses no request that reached an accepted connection, however the app is
started on uvicorn (`python -m app`, `uvicorn app.main:create_app --factory`, `fastapi run`,
gunicorn with uvicorn workers).

On SIGTERM (or SIGINT) the service turns not-ready at once. After SHUTDOWN_DELAY_S (a lame-duck
period in which it still serves) it takes in every connection the kernel has already accepted and
closes the listener in the same step, then gives accepted connections a moment to deliver their
request; only then does uvicorn's own handler run, which finishes what is in flight and exits.
uvicorn alone closes the listening socket first (the kernel resets what waits in its backlog) and
then every connection whose request it has not parsed yet: with 40 requests in flight at SIGTERM,
8 to 31 of them were reset. Every response from SIGTERM on says `Connection: close`
(app/http/middleware.py), so clients reconnect elsewhere.

uvicorn installs its handlers in each worker's main thread before it runs the app's lifespan, so
the lifespan finds the server behind them. This module and app/http/disconnect.py are the only ones
that read uvicorn's internals.
"""

import asyncio
import logging
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How long an accepted connection may take to deliver its request once shutdown begins.
# Requests already sent are parsed within a few loop iterations; this bounds the wait for idle
# keep-alive connections, which get the same chance before they are closed.
REQUEST_GRACE_S = 1.0
# How long to keep taking in connections the kernel has accepted before the listener closes.
BACKLOG_GRACE_S = 1.0

Handler = Callable[[int, FrameType | None], Any]


async def _accept_backlog_then_stop_listening(server: uvicorn.Server) -> None:
    listeners = [sock for listener in server.servers for sock in listener.sockets]
    deadline = time.monotonic() + BACKLOG_GRACE_S
    # The loop accepts whatever is pending each time it runs; no await between the last check
    # and close(), so no connection can slip into the backlog in between.
    while time.monotonic() < deadline and select.select(listeners, [], [], 0)[0]:
        await asyncio.sleep(0.005)
    for listener in server.servers:
        listener.close()


def _between_requests(connection: object) -> bool:
    """An HTTP connection with no request in progress (none yet, or the last one answered)."""
    cycle = getattr(connection, "cycle", None)
    return cycle is None or bool(cycle.response_complete)


async def _let_connections_deliver_their_request(server: uvicorn.Server) -> None:
    deadline = time.monotonic() + REQUEST_GRACE_S
    while time.monotonic() < deadline and any(
        _between_requests(connection) for connection in server.server_state.connections
    ):
        await asyncio.sleep(0.01)


async def _drain_then(
    handler: Handler,
    sig: int,
    server: uvicorn.Server | None,
    delay_s: float,
    stop_accepting: Callable[[], None],
) -> None:
    await asyncio.sleep(delay_s)
    stop_accepting()
    if server is not None:
        await _accept_backlog_then_stop_listening(server)
        await _let_connections_deliver_their_request(server)
    handler(sig, None)


def _uvicorn_server(handlers: dict[signal.Signals, Any]) -> uvicorn.Server | None:
    """The uvicorn server whose exit handler is installed, if that is what runs the app."""
    owner = getattr(handlers[signal.SIGTERM], "__self__", None)
    return owner if isinstance(owner, uvicorn.Server) else None


@contextmanager
def graceful_exit(
    begin_shutdown: Callable[[], None],
    delay_s: float = 0.0,
    stop_accepting: Callable[[], None] = lambda: None,
) -> Iterator[None]:
    """Within this block, SIGTERM/SIGINT run `begin_shutdown` at once, then (see above) the handler
    installed before; `stop_accepting` runs as the listener closes (the service's other
    listeners follow it). A repeated signal passes at once. Enter it on the server's event
    loop."""
    # Signal handlers can only be set from the main thread; elsewhere (TestClient runs the
    # lifespan in a thread) no server owns the signals, so there is nothing to wrap.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in EXIT_SIGNALS}
    server = _uvicorn_server(previous)
    if server is None:
        log.warning(
            "not served by uvicorn: connections waiting at shutdown may be reset; "
            "`python -m app` shuts down without losing any"
        )
    loop = asyncio.get_running_loop() if server is not None or delay_s else None
    draining = False
    drains: list[asyncio.Task[None]] = []  # referenced, so the task is not garbage-collected

    def start_drain(handler: Handler, sig: int) -> None:
        assert loop is not None
        drains.append(loop.create_task(_drain_then(handler, sig, server, delay_s, stop_accepting)))

    def handle(sig: int, frame: FrameType | None) -> None:
        nonlocal draining
        begin_shutdown()
        handler = previous[signal.Signals(sig)]
        if not callable(handler):
            return
        if loop is None or draining:
            handler(sig, frame)
            return
        draining = True
        # A handler may interrupt the loop anywhere: hand it the work thread-safely.
        loop.call_soon_threadsafe(start_drain, handler, sig)

    # Only a Python handler (the server's) is chained; the defaults would end the process at once.
    wrapped = [sig for sig, handler in previous.items() if callable(handler)]
    for sig in wrapped:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig in wrapped:
            if signal.getsignal(sig) is handle:
                signal.signal(sig, previous[sig])
