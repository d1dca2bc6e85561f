"""Optional API key for /classify, /explain and the Open Inference Protocol's infer routes,
checked at the ASGI layer.

Installed only when API_KEY is set, so the common case pays nothing per request; it runs before
the body is read, so a caller without the key cannot make the service parse anything.
"""

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import error_response

PROTECTED_PATHS = frozenset({"/classify", "/explain"})


def is_protected(path: str) -> bool:
    """/classify, /explain and /v2/models/{name}[/versions/{version}]/infer; health, metadata,
    /docs and the playground stay open."""
    return path in PROTECTED_PATHS or (path.startswith("/v2/models/") and path.endswith("/infer"))


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and is_protected(scope["path"])
            and not hmac.compare_digest(self._given_key(scope), self.api_key)
        ):
            response = error_response(
                401,
                "unauthorized",
                "missing or wrong API key "
                "(send 'Authorization: Bearer <key>' or 'X-API-Key: <key>')",
                headers={"WWW-Authenticate": "Bearer"},
                path=scope["path"],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _given_key(scope: Scope) -> bytes:
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer ":
            return bytes(authorization[7:])
        return bytes(headers.get(b"x-api-key", b""))
