"""Tensor contents as bytes, as Triton lays them out in a binary body (REST) and in
`raw_input_contents` / `raw_output_contents` (gRPC): BYTES elements each a 4-byte little-endian
length followed by that many bytes; FP32 row-major little-endian."""

import struct

import numpy as np

from app.oip.contract import INPUT, TensorError

_LENGTH = struct.Struct("<I")


def decode_bytes_elements(raw: bytes, name: str) -> list[bytes]:
    """The elements of a BYTES tensor sent as raw bytes."""
    elements = []
    offset = 0
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            raise TensorError(f"input {name!r}: binary data ends inside an element's length")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + length > len(raw):
            raise TensorError(
                f"input {name!r}: binary element of {length} bytes runs past the data"
            )
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def decode_texts(elements: list[bytes]) -> list[str]:
    """The texts of BYTES elements, or TensorError naming the first that is not UTF-8."""
    try:
        return [element.decode() for element in elements]
    except UnicodeDecodeError as exc:
        raise TensorError(f"input {INPUT!r}: a text is not valid UTF-8 ({exc.reason})") from exc


def encode_bytes_elements(elements: list[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(element)) + element for element in elements)


def encode_fp32(array: np.ndarray) -> bytes:
    """Row-major little-endian float32, as Triton sends FP32."""
    return np.ascontiguousarray(array, dtype="<f4").tobytes()
