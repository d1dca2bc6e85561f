"""The process lifecycle over gRPC: SIGTERM answers every call in flight and turns new ones away
with UNAVAILABLE; the lame-duck period still serves while health says NOT_SERVING; several
workers serve gRPC on one port."""

import asyncio
import signal
import time
from pathlib import Path

import grpc
import pytest
import tritonclient.grpc as triton
import tritonclient.grpc.aio as triton_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from app.core.artifacts import load_artifacts
from tests.grpc.support import client_of, text_input
from tests.support.artifacts import BUNDLED_MODEL
from tests.support.metrics import predictions_by_worker
from tests.support.servers import start_server, stop_server

MODEL = load_artifacts(BUNDLED_MODEL)
REVIEW = "a gripping , beautifully acted film that drags in its second hour " * 6


def test_sigterm_answers_every_call_in_flight_and_refuses_new_ones() -> None:
    # A deep queue, so every call is admitted and many are still queued at the signal.
    unbounded = {"MAX_QUEUE_TEXTS": "100000", "MAX_QUEUE_MS": "0"}
    server = start_server({"MODEL_DIR": str(BUNDLED_MODEL), **unbounded})
    calls = 48

    async def run() -> tuple[list[float], float, str]:
        client = triton_aio.InferenceServerClient(server.grpc_address)
        finished: list[float] = []

        async def call() -> None:
            await client.infer(MODEL.name, [text_input([REVIEW] * 128)])
            finished.append(time.monotonic())

        in_flight = [asyncio.create_task(call()) for _ in range(calls)]
        await asyncio.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # New calls are served until the drain stops accepting, then refused: UNAVAILABLE.
        late = triton_aio.InferenceServerClient(server.grpc_address)
        refusal = "answered"
        deadline = time.monotonic() + 10
        while refusal == "answered" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            try:
                await late.infer(MODEL.name, [text_input(["too late"])])
            except InferenceServerException as exc:
                refusal = str(exc.status())
        await asyncio.gather(*in_flight)  # raises if any call failed
        await late.close()
        await client.close()
        return finished, signalled, refusal

    try:
        finished, signalled, refusal = asyncio.run(run())
        assert server.process.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        output = stop_server(server)
    assert len(finished) == calls
    assert sum(t > signalled for t in finished) > 0, "no call was still in flight at SIGTERM"
    assert refusal == "StatusCode.UNAVAILABLE", output


def test_the_lame_duck_period_serves_while_health_says_not_serving() -> None:
    server = start_server({"MODEL_DIR": str(BUNDLED_MODEL), "SHUTDOWN_DELAY_S": "3"})
    try:
        client = client_of(server)
        with grpc.insecure_channel(server.grpc_address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 2
            status = health_pb2.HealthCheckResponse.SERVING
            while status == health_pb2.HealthCheckResponse.SERVING and time.monotonic() < deadline:
                status = health.Check(health_pb2.HealthCheckRequest(service="")).status
                time.sleep(0.05)
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert not client.is_server_ready()
            assert client.infer(MODEL.name, [text_input(["still served"])])
        assert server.process.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        stop_server(server)


def test_two_workers_both_serve_grpc_on_one_port(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    server = start_server(
        {
            "MODEL_DIR": str(BUNDLED_MODEL),
            "WORKERS": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
    )
    try:
        # A new connection each time (grpc shares connections between channels to one target
        # unless told not to), which the kernel spreads over the workers; the second worker may
        # still be loading its model at first.
        fresh = [("grpc.use_local_subchannel_pool", 1)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            client = triton.InferenceServerClient(server.grpc_address, channel_args=fresh)
            assert client.infer(MODEL.name, [text_input(["fine"])])
            client.close()
            if sum(count > 0 for count in predictions_by_worker(metrics_dir).values()) >= 2:
                break
            time.sleep(0.05)
        served = [count for count in predictions_by_worker(metrics_dir).values() if count > 0]
        assert len(served) == 2, served
    finally:
        stop_server(server)


def test_a_taken_grpc_port_fails_the_start() -> None:
    first = start_server({"MODEL_DIR": str(BUNDLED_MODEL)})
    try:
        port = first.grpc_address.rsplit(":", 1)[1]
        with pytest.raises(RuntimeError, match="GRPC_PORT"):
            start_server({"MODEL_DIR": str(BUNDLED_MODEL), "GRPC_PORT": port})
    finally:
        stop_server(first)
