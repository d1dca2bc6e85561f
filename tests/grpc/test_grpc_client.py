"""The Open Inference Protocol over gRPC, with the real tritonclient.grpc (and its asyncio
client) and stubs of the published proto, against the real server started as README says."""

import asyncio
import struct
from collections.abc import Callable, Iterator

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
import tritonclient.grpc.aio as triton_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

from app.core.artifacts import load_artifacts
from tests.grpc.support import (
    call_raw,
    client_of,
    rest_probabilities,
    stub_of,
    text_input,
    typed_request,
)
from tests.support.artifacts import BUNDLED_MODEL
from tests.support.metrics import metric
from tests.support.servers import Server

TEXTS = ["A gripping, beautifully acted film.", "Two hours I will never get back.", "Meh."]
MODEL = load_artifacts(BUNDLED_MODEL)


@pytest.fixture(scope="module")
def client(bundled_server: Server) -> Iterator[triton.InferenceServerClient]:
    client = client_of(bundled_server)
    yield client
    client.close()


@pytest.fixture(scope="module")
def channel(bundled_server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(bundled_server.grpc_address) as channel:
        yield channel


def test_health_metadata_and_config(
    client: triton.InferenceServerClient, channel: grpc.Channel
) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL.name) and client.is_model_ready(MODEL.name, MODEL.version)
    assert not client.is_model_ready("no-such-model")
    assert "model_repository" in client.get_server_metadata().extensions
    metadata = client.get_model_metadata(MODEL.name, as_json=True)
    assert metadata["name"] == MODEL.name and metadata["versions"] == [MODEL.version]
    assert metadata["inputs"] == [{"name": "TEXT", "datatype": "BYTES", "shape": ["-1"]}]
    assert [o["name"] for o in metadata["outputs"]] == ["PROBABILITIES", "LABEL"]
    config = client.get_model_config(MODEL.name).config
    assert config.name == MODEL.name and config.max_batch_size == 0
    assert config.input[0].name == "TEXT" and list(config.output[0].dims) == [-1, 2]
    assert config.parameters["labels"].string_value == '["negative", "positive"]'
    # What the kubelet's gRPC probe calls.
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "inference.GRPCInferenceService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as unknown:
        health.Check(health_pb2.HealthCheckRequest(service="nope"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("shape", [[3], [3, 1]])
def test_raw_and_typed_contents_answer_as_classify(
    bundled_server: Server,
    client: triton.InferenceServerClient,
    channel: grpc.Channel,
    shape: list[int],
) -> None:
    expected = rest_probabilities(bundled_server, TEXTS)
    raw = client.infer(MODEL.name, [text_input(TEXTS, shape)], request_id="raw-1")
    assert raw.get_response().model_version == MODEL.version
    assert raw.get_response().id == "raw-1"
    np.testing.assert_allclose(raw.as_numpy("PROBABILITIES"), expected, atol=1e-6)
    best = [MODEL.labels[i].encode() for i in expected.argmax(axis=1)]
    assert list(raw.as_numpy("LABEL")) == best

    typed = stub_of(channel).ModelInfer(typed_request(MODEL.name, TEXTS, shape))
    assert not typed.raw_output_contents and typed.id == "typed-1"
    probabilities, labels = typed.outputs
    assert (probabilities.name, probabilities.datatype) == ("PROBABILITIES", "FP32")
    assert list(probabilities.shape) == [3, 2]
    np.testing.assert_allclose(
        np.array(probabilities.contents.fp32_contents).reshape(3, 2), expected, atol=1e-6
    )
    assert list(labels.contents.bytes_contents) == best


def test_a_version_and_only_the_outputs_asked_for(client: triton.InferenceServerClient) -> None:
    result = client.infer(
        MODEL.name,
        [text_input(TEXTS)],
        model_version=MODEL.version,
        outputs=[triton.InferRequestedOutput("LABEL")],
    )
    outputs = result.get_response().outputs
    assert [o.name for o in outputs] == ["LABEL"] and result.as_numpy("PROBABILITIES") is None


def test_the_asyncio_client_with_calls_in_flight(bundled_server: Server) -> None:
    async def run() -> list[np.ndarray]:
        client = triton_aio.InferenceServerClient(bundled_server.grpc_address)
        try:
            assert await client.is_server_ready()
            calls = [client.infer(MODEL.name, [text_input([text])]) for text in TEXTS * 4]
            return [r.as_numpy("PROBABILITIES")[0] for r in await asyncio.gather(*calls)]
        finally:
            await client.close()

    answers = asyncio.run(run())
    np.testing.assert_allclose(
        answers, np.tile(rest_probabilities(bundled_server, TEXTS), (4, 1)), atol=1e-6
    )


def _request(change: Callable[[service_pb2.ModelInferRequest], None]) -> bytes:
    request = typed_request(MODEL.name, TEXTS)
    change(request)
    return request.SerializeToString()


def _raw(buffer: bytes) -> Callable[[service_pb2.ModelInferRequest], None]:
    def change(request: service_pb2.ModelInferRequest) -> None:
        del request.inputs[0].contents.bytes_contents[:]
        request.raw_input_contents.append(buffer)

    return change


def _set(**fields: object) -> Callable[[service_pb2.ModelInferRequest], None]:
    def change(request: service_pb2.ModelInferRequest) -> None:
        for name, value in fields.items():
            target = request if name.startswith("model") else request.inputs[0]
            if isinstance(value, list):
                del getattr(target, name)[:]
                getattr(target, name).extend(value)
            else:
                setattr(target, name, value)

    return change


def _texts(texts: list[bytes]) -> Callable[[service_pb2.ModelInferRequest], None]:
    def change(request: service_pb2.ModelInferRequest) -> None:
        del request.inputs[0].contents.bytes_contents[:]
        request.inputs[0].contents.bytes_contents.extend(texts)
        del request.inputs[0].shape[:]
        request.inputs[0].shape.append(len(texts))

    return change


def _output(name: str) -> Callable[[service_pb2.ModelInferRequest], None]:
    return lambda request: request.outputs.add(name=name) and None


def _no_input(request: service_pb2.ModelInferRequest) -> None:
    del request.inputs[:]


INVALID = grpc.StatusCode.INVALID_ARGUMENT
BAD_REQUESTS = {
    "not a protobuf message": (b"\xff\xff\xff\xff", INVALID, "not a valid ModelInferRequest"),
    "wrong datatype": (_request(_set(datatype="FP32")), INVALID, "datatype must be BYTES"),
    "wrong shape": (_request(_set(shape=[1, 3])), INVALID, "shape must be [N] or [N, 1]"),
    "shape and contents disagree": (_request(_set(shape=[5])), INVALID, "holds 5 texts, got 3"),
    "a length prefix that lies": (
        _request(_raw(struct.pack("<I", 99) + b"abc")),
        INVALID,
        "runs past the data",
    ),
    "a length cut short": (_request(_raw(b"\x03\x00")), INVALID, "ends inside an element"),
    "no input": (_request(_no_input), INVALID, "takes one input"),
    "more texts than allowed": (
        _request(_texts([b"fine"] * 257)),
        INVALID,
        "257 texts, at most 256",
    ),
    "an empty text": (_request(_texts([b"ok", b" "])), INVALID, "texts.1: empty"),
    "a text that is not UTF-8": (_request(_texts([b"\xc3\x28"])), INVALID, "not valid UTF-8"),
    "an unknown output": (_request(_output("SCORES")), INVALID, "unknown output 'SCORES'"),
    "an unknown model": (
        _request(_set(model_name="spam")),
        grpc.StatusCode.NOT_FOUND,
        "unknown model 'spam'",
    ),
    "an unknown version": (
        _request(_set(model_version="999")),
        grpc.StatusCode.NOT_FOUND,
        "unknown version '999'",
    ),
    "a message over MAX_BODY_BYTES": (
        _request(_texts([b"x" * (5 * 1024 * 1024)])),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_gets_its_status_and_a_reason(channel: grpc.Channel, case: str) -> None:
    body, code, reason = BAD_REQUESTS[case]
    with pytest.raises(grpc.RpcError) as refused:
        call_raw(channel, body)
    assert refused.value.code() == code, refused.value.details()
    assert reason in (refused.value.details() or "")


def test_an_rpc_it_does_not_serve_is_unimplemented(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as refused:
        client.get_inference_statistics(MODEL.name)
    assert refused.value.status() == "StatusCode.UNIMPLEMENTED"


def test_request_metrics_carry_the_protocol(
    bundled_server: Server, client: triton.InferenceServerClient, channel: grpc.Channel
) -> None:
    series = (
        'rnn_classifier_request_duration_seconds_count{path="/inference.GRPCInferenceService/'
        'ModelInfer",protocol="grpc",status="%s"}'
    )
    client.infer(MODEL.name, [text_input(TEXTS)])
    with pytest.raises(grpc.RpcError):
        call_raw(channel, _request(_set(datatype="FP32")))
    answered = (
        f'rnn_classifier_model_requests_total{{model="{MODEL.name}",protocol="%s",'
        f'version="{MODEL.version}"}}'
    )
    rest_probabilities(bundled_server, TEXTS)
    url = bundled_server.base_url
    ok, invalid = (metric(url, series % s) for s in ("OK", "INVALID_ARGUMENT"))
    by_grpc, by_rest = (metric(url, answered % p) for p in ("grpc", "rest"))
    client.infer(MODEL.name, [text_input(TEXTS)])
    with pytest.raises(grpc.RpcError):
        call_raw(channel, _request(_set(datatype="FP32")))
    assert metric(url, series % "OK") == ok + 1
    assert metric(url, series % "INVALID_ARGUMENT") == invalid + 1
    assert (metric(url, answered % "grpc"), metric(url, answered % "rest")) == (
        by_grpc + 1,
        by_rest,
    )
    text = httpx.get(bundled_server.base_url + "/metrics").text
    assert 'rnn_classifier_errors_total{protocol="grpc",type="validation"}' in text
    assert 'rnn_classifier_requests_in_flight{protocol="grpc"}' in text
