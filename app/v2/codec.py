"""Triton's binary tensor extension, the wire format tritonclient uses by default.

A body is a JSON header, then the raw bytes of each tensor that declares
`parameters.binary_data_size`, back to back in the order the header lists them. The request says
how long the header is in `Inference-Header-Content-Length` (absent: the body is all JSON). BYTES
elements are each a 4-byte little-endian length followed by that many bytes.
"""

import struct

import numpy as np

HEADER_LENGTH = "Inference-Header-Content-Length"

_LENGTH = struct.Struct("<I")


class TensorError(ValueError):
    """The body does not hold what it declares; the message says what is wrong (a 400)."""


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary part that follows it."""
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise TensorError(
            f"{HEADER_LENGTH} must be a byte count within the body ({len(body)} bytes), "
            f"got {header_length!r}"
        )
    split = int(header_length)
    return body[:split], body[split:]


def decode_bytes_elements(raw: bytes, name: str) -> list[bytes]:
    """The elements of a BYTES tensor sent as binary data."""
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


def encode_bytes_elements(elements: list[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(element)) + element for element in elements)


def encode_fp32(array: np.ndarray) -> bytes:
    """Row-major little-endian float32, as Triton sends FP32."""
    return np.ascontiguousarray(array, dtype="<f4").tobytes()
