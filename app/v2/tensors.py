"""Open Inference Protocol infer bodies <-> texts and probabilities: the one BYTES input a request
carries (JSON or binary, shape [N] or [N, 1]), and the outputs it asks for, in JSON or binary."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from fastapi import Response
from pydantic import ValidationError

from app.http.errors import describe_validation
from app.lifecycle.version import ModelRef
from app.oip.contract import (
    CLASSIFICATION_UNSUPPORTED,
    INPUT,
    OUTPUTS,
    PROBABILITIES,
    TensorError,
    check_count,
    check_input,
    check_input_names,
    check_outputs,
)
from app.oip.elements import (
    decode_bytes_elements,
    decode_texts,
    encode_bytes_elements,
    encode_fp32,
)
from app.v2.codec import HEADER_LENGTH, split_body
from app.v2.schemas import InferRequest, RequestInput


@dataclass(frozen=True)
class DecodedRequest:
    id: str | None
    texts: list[str]
    binary_outputs: dict[str, bool]  # the outputs to send, in order: whether each is binary


def decode_request(body: bytes, header_length: str | None) -> DecodedRequest:
    """The texts and the wanted outputs, or a TensorError saying what is wrong."""
    header, binary = split_body(body, header_length)
    try:
        request = InferRequest.model_validate_json(header)
    except ValidationError as exc:
        raise TensorError(describe_validation(exc.errors())) from exc
    check_input_names([tensor.name for tensor in request.inputs])
    tensor = request.inputs[0]
    check_input(tensor.datatype, tensor.shape)
    texts = _texts(tensor, binary)
    check_count(tensor.shape, len(texts))
    return DecodedRequest(request.id, texts, _binary_outputs(request))


def _texts(tensor: RequestInput, binary: bytes) -> list[str]:
    size = tensor.parameters.binary_data_size
    if size is None:
        if binary:
            raise TensorError(
                f"{len(binary)} bytes follow the JSON header, but no input declares "
                "parameters.binary_data_size"
            )
        if tensor.data is None:
            raise TensorError(f"input {INPUT!r}: no data and no parameters.binary_data_size")
        texts = list(_flatten(tensor.data))
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TensorError(f"input {INPUT!r}: element {i} is not a string")
        return texts
    if tensor.data is not None:
        raise TensorError(f"input {INPUT!r}: both data and parameters.binary_data_size")
    if size != len(binary):
        raise TensorError(
            f"input {INPUT!r}: binary_data_size is {size}, but {len(binary)} bytes follow the "
            f"JSON header ({HEADER_LENGTH})"
        )
    return decode_texts(decode_bytes_elements(binary, INPUT))


def _flatten(data: list[Any]) -> Iterator[Any]:
    for item in data:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def _binary_outputs(request: InferRequest) -> dict[str, bool]:
    default = request.parameters.binary_data_output
    if not request.outputs:
        return dict.fromkeys(OUTPUTS, default)
    check_outputs(output.name for output in request.outputs)
    wanted = {}
    for output in request.outputs:
        if output.parameters.classification:
            raise TensorError(CLASSIFICATION_UNSUPPORTED)
        binary = output.parameters.binary_data
        wanted[output.name] = default if binary is None else binary
    return wanted


def infer_response(
    model: ModelRef,
    request: DecodedRequest,
    probabilities: np.ndarray,
    labels: list[str],
) -> Response:
    """The response with the outputs the request asked for; binary ones after the JSON header."""
    outputs: list[dict[str, Any]] = []
    raw_parts: list[bytes] = []
    for name, binary in request.binary_outputs.items():
        output: dict[str, Any]
        if name == PROBABILITIES:
            output = {"name": name, "datatype": "FP32", "shape": list(probabilities.shape)}
            if binary:
                raw_parts.append(encode_fp32(probabilities))
            else:
                output["data"] = probabilities.ravel().tolist()
        else:
            output = {"name": name, "datatype": "BYTES", "shape": [len(labels)]}
            if binary:
                raw_parts.append(encode_bytes_elements([label.encode() for label in labels]))
            else:
                output["data"] = labels
        if binary:
            output["parameters"] = {"binary_data_size": len(raw_parts[-1])}
        outputs.append(output)
    body: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if request.id is not None:
        body["id"] = request.id
    body["outputs"] = outputs
    header = orjson.dumps(body)
    if not raw_parts:
        return Response(header, media_type="application/json")
    return Response(
        b"".join([header, *raw_parts]),
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(header))},
    )
