"""Whatever ModelInfer receives, the answer is a status that says what is wrong (never UNKNOWN
or INTERNAL): messages built from the published proto with arbitrary names, datatypes, shapes,
typed and raw contents, outputs and parameters; and bytes that are no message at all."""

from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tritonclient.grpc import service_pb2

from tests.grpc.support import call_raw
from tests.support.servers import Server

NAMES = st.sampled_from(["TEXT", "text", "PROBABILITIES", "", "X"])
DATATYPES = st.sampled_from(["BYTES", "FP32", "INT64", "", "bytes"])
TEXTS = st.lists(st.binary(max_size=40) | st.text(max_size=40).map(str.encode), max_size=6)


@st.composite
def infer_requests(draw: st.DrawFn) -> bytes:
    request = service_pb2.ModelInferRequest(
        model_name=draw(st.sampled_from(["rotten_tomatoes-gru", "", "spam"])),
        model_version=draw(st.sampled_from(["", "1", "20261202000231"])),
        id=draw(st.text(max_size=8)),
    )
    for _ in range(draw(st.integers(0, 2))):
        tensor = request.inputs.add(name=draw(NAMES), datatype=draw(DATATYPES))
        tensor.shape.extend(draw(st.lists(st.integers(-3, 2**40), max_size=3)))
        if draw(st.booleans()):
            tensor.contents.bytes_contents.extend(draw(TEXTS))
        if draw(st.booleans()):
            tensor.contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=3)))
        if draw(st.booleans()):
            tensor.parameters["binary_data_size"].int64_param = draw(st.integers(-5, 50))
    for _ in range(draw(st.integers(0, 2))):
        request.raw_input_contents.append(draw(st.binary(max_size=64)))
    for _ in range(draw(st.integers(0, 2))):
        output = request.outputs.add(name=draw(NAMES | st.just("LABEL")))
        if draw(st.booleans()):
            output.parameters["classification"].int64_param = draw(st.integers(-1, 3))
    return request.SerializeToString()


@pytest.fixture(scope="module")
def channel(bundled_server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(bundled_server.grpc_address) as channel:
        yield channel


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=infer_requests() | st.binary(max_size=200))
def test_model_infer_never_answers_unknown_or_internal(channel: grpc.Channel, body: bytes) -> None:
    try:
        call_raw(channel, body)
    except grpc.RpcError as exc:
        assert exc.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (
            exc.code(),
            exc.details(),
        )
        assert exc.details()
