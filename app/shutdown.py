"""Turn not-ready the moment SIGTERM (or SIGINT) arrives, then let uvicorn drain as usual.

uvicorn's Server installs its own handlers for these signals in each worker's main thread before
it runs the app's lifespan; wrapping them from the lifespan works the same with WORKERS=1 (the
server runs in this process) and WORKERS>1 (the supervisor forwards SIGTERM to every worker).
"""

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def before_exit_signals(callback: Callable[[], None]) -> Iterator[None]:
    """Within this block, SIGTERM/SIGINT run `callback`, then the handler installed before."""
    # Signal handlers can only be set from the main thread; elsewhere (TestClient runs the
    # lifespan in a thread) no server owns the signals, so there is nothing to wrap.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in EXIT_SIGNALS}

    def handle(sig: int, frame: FrameType | None) -> None:
        callback()
        handler = previous[signal.Signals(sig)]
        if callable(handler):
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
