"""uvicorn, with a shutdown that loses no request that reached an accepted connection.

uvicorn's own shutdown closes the listening socket (the kernel resets connections still in its
accept backlog) and then closes every connection whose request it has not parsed yet: with 40
requests in flight at SIGTERM, 8 of them got ConnectionResetError. Here, before uvicorn's
shutdown runs, the backlog is taken in and the listener closed in the same step, and accepted
connections get a moment to deliver their request. Every request received from then on is
served with `Connection: close` (app/middleware.py), so clients reconnect elsewhere.

This module and app/disconnect.py are the only ones that read uvicorn's internals.
"""

import asyncio
import logging
import select
import socket
import time

import uvicorn
from uvicorn.supervisors import multiprocess

log = logging.getLogger(__name__)

# How long an accepted connection may take to deliver its request once shutdown begins.
# Requests already sent are parsed within a few loop iterations; this bounds the wait for idle
# keep-alive connections, which get the same chance before they are closed.
REQUEST_GRACE_S = 1.0
# How long to keep taking in connections the kernel has accepted before the listener closes.
BACKLOG_GRACE_S = 1.0


class DrainingServer(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._accept_backlog_then_stop_listening()
        await self._let_connections_deliver_their_request()
        await super().shutdown(sockets)

    async def _accept_backlog_then_stop_listening(self) -> None:
        listeners = [sock for server in self.servers for sock in server.sockets]
        deadline = time.monotonic() + BACKLOG_GRACE_S
        # The loop accepts whatever is pending each time it runs; no await between the last
        # check and close(), so no connection can slip into the backlog in between.
        while time.monotonic() < deadline and select.select(listeners, [], [], 0)[0]:
            await asyncio.sleep(0.005)
        for server in self.servers:
            server.close()

    async def _let_connections_deliver_their_request(self) -> None:
        deadline = time.monotonic() + REQUEST_GRACE_S
        while time.monotonic() < deadline and any(
            _between_requests(connection) for connection in self.server_state.connections
        ):
            await asyncio.sleep(0.01)


def _between_requests(connection: object) -> bool:
    """An HTTP connection with no request in progress (none yet, or the last one answered)."""
    cycle = getattr(connection, "cycle", None)
    return cycle is None or bool(cycle.response_complete)


class DrainingProcess(multiprocess.Process):
    """A worker process of the multi-worker supervisor that runs a DrainingServer."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


def serve(config: uvicorn.Config) -> None:
    """uvicorn.run's single- and multi-worker paths, with DrainingServer in every worker."""
    if config.workers > 1:
        # The supervisor builds its worker processes from this module-level name; the workers
        # (spawned) unpickle DrainingProcess by reference, so they run DrainingServer too.
        multiprocess.Process = DrainingProcess  # type: ignore[misc]
        multiprocess.Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        server = DrainingServer(config)
        server.run()
        if not server.started:  # e.g. the port is taken: fail as uvicorn.run does
            raise SystemExit(3)
