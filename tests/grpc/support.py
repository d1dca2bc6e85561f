"""Calling the server's gRPC the ways its users do: tritonclient.grpc (raw contents), the stubs
of the published proto with typed contents, and bytes that are not a message at all."""

import grpc
import httpx
import numpy as np
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.support.servers import Server

INFER = "/inference.GRPCInferenceService/ModelInfer"


def client_of(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.grpc_address)


def text_input(texts: list[str], shape: list[int] | None = None) -> triton.InferInput:
    shape = shape or [len(texts)]
    tensor = triton.InferInput("TEXT", shape, "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object).reshape(shape))
    return tensor


def typed_request(
    model: str, texts: list[str], shape: list[int] | None = None
) -> service_pb2.ModelInferRequest:
    """A request with its texts in `contents.bytes_contents` (no raw buffers)."""
    request = service_pb2.ModelInferRequest(model_name=model, id="typed-1")
    tensor = request.inputs.add(name="TEXT", datatype="BYTES", shape=shape or [len(texts)])
    tensor.contents.bytes_contents.extend(t.encode() for t in texts)
    return request


def stub_of(channel: grpc.Channel) -> service_pb2_grpc.GRPCInferenceServiceStub:
    return service_pb2_grpc.GRPCInferenceServiceStub(channel)


def call_raw(channel: grpc.Channel, body: bytes) -> bytes:
    """ModelInfer with `body` sent as it is, whatever it holds."""
    method = channel.unary_unary(INFER)
    return method(body, timeout=10)  # type: ignore[no-any-return]


def rest_probabilities(server: Server, texts: list[str]) -> np.ndarray:
    response = httpx.post(server.base_url + "/classify", json={"texts": texts})
    assert response.status_code == 200, response.text
    body = response.json()
    labels = list(body["results"][0]["probabilities"])
    return np.array([[r["probabilities"][label] for label in labels] for r in body["results"]])
