"""The HTML pages the service serves (Swagger UI, the playground): strict headers, and the
playground's static files.

Pages load nothing from elsewhere, so they work in an air-gapped cluster, and the policy says so:
a browser refuses anything not from this service, and any inline script not named by its hash.
"""

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(str(files("app.ui") / "static"))
STATIC_PATH = "/static"


def content_security_policy(script_hashes: tuple[str, ...] = ()) -> str:
    """Self only. Images may be data: URIs (Swagger UI's CSS draws its icons that way)."""
    scripts = " ".join(["'self'", *(f"'sha256-{h}'" for h in script_hashes)])
    return (
        "default-src 'none'; "
        f"script-src {scripts}; "
        "style-src 'self'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "base-uri 'none'; "
        "form-action 'none'; "
        "frame-ancestors 'none'"
    )


def page_headers(script_hashes: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(script_hashes),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def install_playground(app: FastAPI) -> None:
    """The playground at / (app/ui/static/index.html) and its script and stylesheet."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def playground() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=page_headers())
