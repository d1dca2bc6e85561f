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


def refusal(scope: Scope, api_key: bytes | None, setting: str = "API_KEY") -> Response | None:
    """The 401 for a request without the key, or None when it may pass."""
    if api_key is None or hmac.compare_digest(headers_of(scope).credential, api_key):
        return None
    what = "API key" if setting == "API_KEY" else f"key ({setting})"
    return error_response(
        scope,
        401,
        "unauthorized",
        f"missing or wrong {what} (send 'Authorization: Bearer <key>' or 'X-API-Key: <key>')",
        headers={"WWW-Authenticate": "Bearer"},
    )


def configured_key(scope: Scope, setting: str = "API_KEY") -> bytes | None:
    """The key as create_app keeps it in the app's state (app.state.keys): bytes, or None."""
    key: bytes | None = scope["app"].state.keys[setting]
    return key


class ApiKeyRoute(APIRoute):
    """A route that needs API_KEY, when one is set."""

    setting = "API_KEY"

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        setting = self.setting

        async def checked(request: Request) -> Response:
            key = configured_key(request.scope, setting)
            refused = refusal(request.scope, key, setting)
            return refused if refused is not None else await handler(request)

        return checked


class AdminKeyRoute(ApiKeyRoute):
    """A route that changes what is served: it needs ADMIN_API_KEY (never API_KEY)."""

    setting = "ADMIN_API_KEY"
