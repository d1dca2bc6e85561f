"""The gRPC server beside REST: grpcio's asyncio server on the event loop uvicorn runs, serving
the inference service and the standard health service (what Kubernetes' gRPC probes call).

Health follows readiness: SERVING for "" and the inference service while the service takes
traffic, NOT_SERVING while starting, failed or draining. At the drain, `stop_accepting` makes
grpcio refuse new calls (UNAVAILABLE, and a GOAWAY so clients reconnect elsewhere) while calls
in flight finish; `stop` waits for them, up to SHUTDOWN_TIMEOUT_S.

grpcio's stop cancels the calls that have reached the server but that the event loop has not
handed to a handler yet (with 48 calls sent at once, 10 of them at SIGTERM: CANCELLED, lost to
the caller). So the stop waits first until no new call has started for DISPATCH_QUIET_S (at most
DISPATCH_GRACE_S): what had arrived is then running, and finishes. The gRPC counterpart of the
backlog grace app/http/shutdown.py gives HTTP connections.
"""

import asyncio
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from app.grpc.service import SERVICE, InferenceService, generic_handler
from app.lifecycle.state import Readiness, ServingState

log = logging.getLogger(__name__)

HEALTH_SERVICES = ("", SERVICE.full_name)
DISPATCH_QUIET_S = 0.1
DISPATCH_GRACE_S = 1.0


class GrpcServer:
    def __init__(self, state: ServingState, keys: dict[str, bytes | None]) -> None:
        self.state, self.keys, self.settings = state, keys, state.settings
        self.health = health_aio.HealthServicer()
        self._stopping: asyncio.Task[None] | None = None
        self._pending: list[asyncio.Task[None]] = []  # referenced until done

    async def start(self) -> None:
        """Listen on GRPC_PORT (RuntimeError when it cannot); call it on the server's loop."""
        settings = self.settings
        self._loop = asyncio.get_running_loop()
        self.server = grpc.aio.server(
            options=[
                # With several workers each binds the port, as each serves REST's; alone, a taken
                # port must fail the start rather than be shared with another process.
                ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
                ("grpc.max_receive_message_length", settings.max_body_bytes),
            ]
        )
        self.service = InferenceService(self.state, self.keys)
        self.server.add_generic_rpc_handlers([generic_handler(self.service)])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        host, port = settings.host, settings.grpc_port
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise RuntimeError(f"gRPC cannot listen on {address} (GRPC_PORT): {exc}") from exc
        await self.server.start()
        self.state.readiness_listeners.append(self._follow)
        self._follow(self.state.readiness)
        log.info("gRPC listening on %s", address)

    def _follow(self, readiness: Readiness) -> None:
        # Readiness may change in a signal handler (SIGTERM), which can interrupt the loop
        # anywhere: the status is set from the loop's next turn.
        self._loop.call_soon_threadsafe(self._set_health, readiness.ready)

    def _set_health(self, ready: bool) -> None:
        serving = health_pb2.HealthCheckResponse
        status = serving.SERVING if ready else serving.NOT_SERVING
        for service in HEALTH_SERVICES:
            self._pending.append(self._loop.create_task(self.health.set(service, status)))
        self._pending = [task for task in self._pending if not task.done()]

    def stop_accepting(self) -> None:
        """Refuse new calls from now on; calls in flight go on. Called once the drain begins."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop_once_dispatched())

    async def _stop_once_dispatched(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DISPATCH_GRACE_S
        seen = -1
        while seen != self.service.calls_started and loop.time() < deadline:
            seen = self.service.calls_started
            await asyncio.sleep(DISPATCH_QUIET_S)
        await self.server.stop(float(self.settings.shutdown_timeout_s))

    async def stop(self) -> None:
        """Once every call in flight is answered (or SHUTDOWN_TIMEOUT_S passed)."""
        self.stop_accepting()
        assert self._stopping is not None
        await self._stopping
