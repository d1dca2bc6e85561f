"""How the Open Inference Protocol answers the request path's errors: what REST answers with 422
is a 400 here, naming the input tensor; the body is the protocol's {"error": "<message>"} (what
tritonclient and KServe read), for every path under /v2, unmatched ones included."""

from app.errors import InferError, InvalidInput
from app.http.errors import ErrorShape, HttpError, shared_http_error
from app.oip.contract import input_problem

# Everything under this prefix speaks the Open Inference Protocol, its errors included.
OIP_PREFIX = "/v2"


def v2_http_error(exc: InferError) -> HttpError:
    if isinstance(exc, InvalidInput):
        return HttpError(400, "validation", input_problem(exc))
    return shared_http_error(exc)


V2_ERRORS = ErrorShape(
    prefix=OIP_PREFIX, error=lambda type_, message: message, mapping=v2_http_error
)
