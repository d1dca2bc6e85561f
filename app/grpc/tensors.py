"""ModelInferRequest -> texts, and probabilities -> ModelInferResponse.

Texts come as typed `contents.bytes_contents` or as one `raw_input_contents` buffer (BYTES
elements with their 4-byte length prefixes, what tritonclient sends); the outputs go back the way
the input came, typed or raw, in the order the request asks for them (both when it names none).
"""

from dataclasses import dataclass

import numpy as np

from app.grpc.proto import grpc_service_pb2 as pb
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

_TYPED_FIELDS = [f.name for f in pb.InferTensorContents.DESCRIPTOR.fields]


@dataclass(frozen=True)
class DecodedInfer:
    texts: list[str]
    outputs: list[str]  # the outputs to send, in order
    raw: bool  # the texts came as raw_input_contents: answer in raw_output_contents


def decode_infer(request: pb.ModelInferRequest) -> DecodedInfer:
    """The texts and the wanted outputs, or a TensorError saying what is wrong."""
    check_input_names([tensor.name for tensor in request.inputs])
    tensor = request.inputs[0]
    check_input(tensor.datatype, tensor.shape)
    typed = [name for name in _TYPED_FIELDS if len(getattr(tensor.contents, name))]
    if request.raw_input_contents:
        if len(request.raw_input_contents) != 1:
            raise TensorError(
                f"raw_input_contents holds {len(request.raw_input_contents)} buffers for 1 input"
            )
        if typed:
            raise TensorError(f"input {INPUT!r}: both contents and raw_input_contents")
        elements = decode_bytes_elements(request.raw_input_contents[0], INPUT)
    else:
        if typed and typed != ["bytes_contents"]:
            raise TensorError(f"input {INPUT!r}: a BYTES input holds bytes_contents, got {typed}")
        elements = list(tensor.contents.bytes_contents)
    texts = decode_texts(elements)
    check_count(tensor.shape, len(texts))
    return DecodedInfer(texts, _outputs(request), raw=bool(request.raw_input_contents))


def _outputs(request: pb.ModelInferRequest) -> list[str]:
    if not request.outputs:
        return list(OUTPUTS)
    names = [output.name for output in request.outputs]
    check_outputs(names)
    for output in request.outputs:
        if "classification" in output.parameters:
            raise TensorError(CLASSIFICATION_UNSUPPORTED)
    return names


def infer_response(
    model: ModelRef,
    request_id: str,
    decoded: DecodedInfer,
    probabilities: np.ndarray,
    labels: list[str],
) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(
        model_name=model.name, model_version=model.version, id=request_id
    )
    for name in decoded.outputs:
        output = response.outputs.add(name=name)
        if name == PROBABILITIES:
            output.datatype = "FP32"
            output.shape.extend(probabilities.shape)
            if decoded.raw:
                response.raw_output_contents.append(encode_fp32(probabilities))
            else:
                output.contents.fp32_contents.extend(probabilities.ravel().tolist())
        else:
            output.datatype = "BYTES"
            output.shape.append(len(labels))
            encoded = [label.encode() for label in labels]
            if decoded.raw:
                response.raw_output_contents.append(encode_bytes_elements(encoded))
            else:
                output.contents.bytes_contents.extend(encoded)
    return response
