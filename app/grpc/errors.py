"""How gRPC answers the request path's errors: one table from error to status code (as MLServer's
grpc/utils.py), and the error type the `errors_total` metric counts, the same words REST uses."""

from typing import Any, TypeAlias

import grpc

from app.errors import (
    BatchFailed,
    ClientGone,
    InvalidInput,
    NotReady,
    Overloaded,
    UnknownModel,
)
from app.lifecycle.control import ControlError
from app.oip.contract import TensorError, input_problem
from app.repository.layout import RepositoryError
from app.repository.source import StoreUnavailable


class Unauthenticated(Exception):
    """The call lacks the key its RPC needs; the message says which and how to send it."""


class BadRequest(Exception):
    """A request the protocol refuses before the request path sees it (e.g. not a valid
    protobuf message); the message says why."""


Code = grpc.StatusCode
CodeType: TypeAlias = Any  # a grpc.StatusCode; grpcio ships no type hints

# Most specific first: the first class an error is an instance of decides.
STATUS: list[tuple[type[Exception], CodeType, str]] = [
    (InvalidInput, Code.INVALID_ARGUMENT, "validation"),
    (TensorError, Code.INVALID_ARGUMENT, "validation"),
    (BadRequest, Code.INVALID_ARGUMENT, "validation"),
    (StoreUnavailable, Code.UNAVAILABLE, "not_ready"),
    (RepositoryError, Code.INVALID_ARGUMENT, "validation"),
    (UnknownModel, Code.NOT_FOUND, "not_found"),
    (Overloaded, Code.RESOURCE_EXHAUSTED, "overloaded"),
    (NotReady, Code.UNAVAILABLE, "not_ready"),
    # A refused load, NotExplicitControl (the server's mode forbids it) included.
    (ControlError, Code.FAILED_PRECONDITION, "refused"),
    (Unauthenticated, Code.UNAUTHENTICATED, "unauthorized"),
    (ClientGone, Code.CANCELLED, "client_gone"),
    (BatchFailed, Code.INTERNAL, "internal"),
]


def status_of(exc: Exception) -> tuple[CodeType, str, str] | None:
    """(code, error type, message) for an error the table knows; None for any other."""
    for kind, code, type_ in STATUS:
        if isinstance(exc, kind):
            message = input_problem(exc) if isinstance(exc, InvalidInput) else str(exc)
            return code, type_, message
    return None


def trailing_metadata(exc: Exception) -> tuple[tuple[str, str], ...]:
    """The retry hint of an overload: seconds as HTTP's Retry-After, and gRPC's own pushback,
    which clients with a retry policy honour."""
    if isinstance(exc, Overloaded):
        return (
            ("retry-after", str(exc.retry_after_s)),
            ("grpc-retry-pushback-ms", str(exc.retry_after_s * 1000)),
        )
    return ()
