"""What can go wrong on the request path, with no status codes: each protocol maps these to its own
answer (REST and v2 in app/api/errors.py and app/v2/errors.py; the CLI to an exit status)."""


class InferError(Exception):
    """Base of the request path's errors; the message is what the caller is told."""


class InvalidInput(InferError):
    """A text the service refuses: empty, too long, too many. `where` names it ("texts.1")."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where, self.problem = where, problem


class UnknownModel(InferError):
    """No loaded model (or version of it) of the name a request asks for."""


class NotReady(InferError):
    """No model to answer with: starting, refused at load, or shutting down."""


class Overloaded(InferError):
    """Refused at admission (nothing was queued); retry after `retry_after_s` seconds."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BatchFailed(InferError):
    """The forward pass of a batch holding this request's texts raised; `error_id` is logged."""

    def __init__(self, error_id: str) -> None:
        super().__init__(f"inference failed (error id {error_id})")
        self.error_id = error_id


class ClientGone(InferError):
    """The client disconnected before its texts ran: there is nobody to answer."""
