"""Swagger UI at /docs, served with its assets from this service: it works with no internet.

FastAPI's default page loads Swagger UI from a CDN, which is a blank page in an air-gapped
cluster. The JavaScript, CSS and favicon come from the `fastapi-offline` package's data (Swagger UI
5, which reads OpenAPI 3.1); the page itself is FastAPI's own `get_swagger_ui_html` pointed at
them, so it stays an ordinary route of the app factory instead of a second FastAPI subclass.
ReDoc is not carried: its bundle injects <style> elements and starts a blob: worker, which a
self-only Content-Security-Policy would have to open up for a second view of the same schema.
"""

import base64
import hashlib
import re
from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.ui.pages import page_headers

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/static"
_ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@cache
def _swagger_page(root_path: str, title: str, openapi_url: str) -> tuple[str, dict[str, str]]:
    page = get_swagger_ui_html(
        openapi_url=f"{root_path}{openapi_url}",
        title=f"{title} - Swagger UI",
        swagger_js_url=f"{root_path}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root_path}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root_path}{ASSETS_PATH}/favicon.png",
        # No validator badge: it would send the schema to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode()
    # The one inline script (Swagger UI's init) is allowed by its hash, not by 'unsafe-inline'.
    hashes = tuple(
        base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        for script in _INLINE_SCRIPT.findall(html)
    )
    return html, page_headers(hashes)


def install_docs_ui(app: FastAPI) -> None:
    """Serve /docs and its assets; the app must be built with docs_url=None, redoc_url=None."""
    assert app.openapi_url is not None
    openapi_url, title = app.openapi_url, app.title
    app.mount(ASSETS_PATH, StaticFiles(directory=_ASSETS_DIR), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        html, headers = _swagger_page(request.scope.get("root_path", ""), title, openapi_url)
        return HTMLResponse(html, headers=headers)
