"""Triton's binary tensor extension, the wire format tritonclient uses by default.

A body is a JSON header, then the raw bytes of each tensor that declares
`parameters.binary_data_size`, back to back in the order the header lists them. The request says
how long the header is in `Inference-Header-Content-Length` (absent: the body is all JSON). BYTES
elements are each a 4-byte little-endian length followed by that many bytes (app/oip/elements.py).
"""

from app.oip.contract import TensorError

HEADER_LENGTH = "Inference-Header-Content-Length"


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
