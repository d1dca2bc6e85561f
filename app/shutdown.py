"""Turn not-ready the moment SIGTERM (or SIGINT) arrives, then let uvicorn drain (app/server.py),
at once or after a lame-duck period (SHUTDOWN_DELAY_S) in which the server still serves.

uvicorn's Server installs its own handlers for these signals in each worker's main thread before
it runs the app's lifespan; wrapping them from the lifespan works the same with WORKERS=1 (the
server runs in this process) and WORKERS>1 (the supervisor forwards SIGTERM to every worker).
"""

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def before_exit_signals(callback: Callable[[], None], delay_s: float = 0.0) -> Iterator[None]:
    """Within this block, SIGTERM/SIGINT run `callback`, then the handler installed before,
    `delay_s` later (a repeated signal passes at once). With a delay, call it on the event loop."""
    # Signal handlers can only be set from the main thread; elsewhere (TestClient runs the
    # lifespan in a thread) no server owns the signals, so there is nothing to wrap.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in EXIT_SIGNALS}
    loop = asyncio.get_running_loop() if delay_s else None
    delayed = False

    def handle(sig: int, frame: FrameType | None) -> None:
        nonlocal delayed
        callback()
        handler = previous[signal.Signals(sig)]
        if not callable(handler):
            return
        if loop is not None and not delayed:
            delayed = True
            # A handler may interrupt the loop anywhere: hand it the timer thread-safely.
            loop.call_soon_threadsafe(loop.call_later, delay_s, handler, sig, frame)
        else:
            handler(sig, frame)

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
