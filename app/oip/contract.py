"""What a classifier takes and gives in the Open Inference Protocol, whatever the transport: one
BYTES input of texts, [N] or [N, 1]; the outputs PROBABILITIES (FP32 [N, labels]) and LABEL
(BYTES [N]). Both adapters check a request here, so REST and gRPC refuse the same requests with
the same words."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.errors import InvalidInput

SERVER_NAME = "rnn-text-classifier"
INPUT = "TEXT"
PROBABILITIES = "PROBABILITIES"
LABEL = "LABEL"
OUTPUTS = (PROBABILITIES, LABEL)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: list[int]  # -1: any size


def input_specs() -> list[TensorSpec]:
    return [TensorSpec(INPUT, "BYTES", [-1])]


def output_specs(labels: int) -> list[TensorSpec]:
    """What a model of `labels` classes answers, in the order it answers them."""
    return [TensorSpec(PROBABILITIES, "FP32", [-1, labels]), TensorSpec(LABEL, "BYTES", [-1])]


class TensorError(ValueError):
    """The request does not hold what the contract asks; the message says what is wrong."""


def check_input_names(names: Sequence[str]) -> None:
    if list(names) != [INPUT]:
        raise TensorError(f"this model takes one input, {INPUT!r} (BYTES); got {list(names)}")


def check_input(datatype: str, shape: Sequence[int]) -> None:
    """TensorError unless the input is BYTES of shape [N] or [N, 1]."""
    if datatype != "BYTES":
        raise TensorError(f"input {INPUT!r}: datatype must be BYTES, got {datatype!r}")
    shape = list(shape)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
        raise TensorError(f"input {INPUT!r}: shape must be [N] or [N, 1] with N >= 1, got {shape}")


def check_count(shape: Sequence[int], found: int) -> None:
    if found != shape[0]:
        raise TensorError(
            f"input {INPUT!r}: shape {list(shape)} holds {shape[0]} texts, got {found}"
        )


def check_outputs(names: Iterable[str]) -> None:
    for name in names:
        if name not in OUTPUTS:
            raise TensorError(f"unknown output {name!r}; this model has {list(OUTPUTS)}")


CLASSIFICATION_UNSUPPORTED = (
    f"the classification extension is not supported; ask for {PROBABILITIES} and {LABEL}"
)


def input_problem(exc: InvalidInput) -> str:
    """What the request path refused; a text is named as the protocol's input."""
    return f"input {INPUT!r}: {exc}" if exc.where.startswith("texts") else str(exc)
