"""Optional API key (API_KEY) for the routes that run the model.

Which routes need it comes from the routes themselves: one of class `ApiKeyRoute` (put on a
router with `APIRouter(route_class=ApiKeyRoute)`) is protected wherever it is mounted and whatever
its path is. The key is checked before the route reads the body or solves a dependency, so a
caller without it cannot make the service parse anything.
"""

import hmac
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import Scope

from app.http.errors import error_response
from app.http.headers import headers_of


def refusal(scope: Scope, api_key: bytes | None) -> Response | None:
    """The 401 for a request without the key, or None when it may pass."""
    if api_key is None or hmac.compare_digest(headers_of(scope).credential, api_key):
        return None
    return error_response(
        401,
        "unauthorized",
        "missing or wrong API key (send 'Authorization: Bearer <key>' or 'X-API-Key: <key>')",
        headers={"WWW-Authenticate": "Bearer"},
        path=scope["path"],
    )


def configured_key(scope: Scope) -> bytes | None:
    """API_KEY as create_app keeps it in the app's state: bytes, or None for no key."""
    key: bytes | None = scope["app"].state.api_key
    return key


class ApiKeyRoute(APIRoute):
    """A route that needs API_KEY, when one is set."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            refused = refusal(request.scope, configured_key(request.scope))
            return refused if refused is not None else await handler(request)

        return checked
