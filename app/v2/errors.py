"""How the Open Inference Protocol answers the request path's errors: what REST answers with 422
is a 400 here, naming the input tensor; the body is the protocol's {"error": "<message>"}."""

from app.errors import InferError, InvalidInput
from app.http.errors import HttpError, shared_http_error
from app.oip.contract import input_problem


def v2_http_error(exc: InferError) -> HttpError:
    if isinstance(exc, InvalidInput):
        return HttpError(400, "validation", input_problem(exc))
    return shared_http_error(exc)
