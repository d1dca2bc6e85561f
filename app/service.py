"""The service's lifecycle, which REST and gRPC share: load the models and start the runners,
listen on gRPC beside REST, and at SIGTERM drain both, losing no request.

uvicorn runs it (the ASGI lifespan of app/main.py): `start` before the HTTP server listens,
`begin_shutdown` at the signal (readiness fails at once, both protocols still serve),
`stop_accepting` when the drain begins after SHUTDOWN_DELAY_S (gRPC refuses new calls as the
HTTP listener closes), `drain` once uvicorn has answered every HTTP request in flight: gRPC's
calls in flight finish, then every queued text, then every model version is freed.
"""

from app import metrics
from app.lifecycle.state import ServingState
from app.settings import Settings


class Service:
    def __init__(self, settings: Settings, keys: dict[str, bytes | None]) -> None:
        self.settings = settings
        self.state = ServingState(settings)
        self.keys = keys
        # Imported only when served: a process without gRPC never loads grpcio.
        if settings.grpc_port:
            from app.grpc.server import GrpcServer

            self.grpc: GrpcServer | None = GrpcServer(self.state, keys)
        else:
            self.grpc = None

    async def start(self) -> None:
        await self.state.start()
        if self.grpc is not None:
            await self.grpc.start()

    def begin_shutdown(self) -> None:
        self.state.begin_shutdown()

    def stop_accepting(self) -> None:
        if self.grpc is not None:
            self.grpc.stop_accepting()

    async def drain(self) -> None:
        self.state.begin_shutdown()
        if self.grpc is not None:
            await self.grpc.stop()
        await self.state.drain()
        metrics.mark_process_dead()
