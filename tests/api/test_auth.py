"""API_KEY protection follows the routes: a route on a protected router needs the key wherever it
is mounted, and one on an open router never does."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.testclient import TestClient

from app.http.auth import ApiKeyRoute
from app.main import create_app
from app.settings import Settings


def test_a_route_added_to_a_protected_router_is_protected(tiny_model_dir: Path) -> None:
    app = create_app(Settings(model_dir=tiny_model_dir, threads=1, api_key="s3cret"))
    protected, open_ = APIRouter(route_class=ApiKeyRoute), APIRouter()

    @protected.get("/added/{anything}")
    async def added() -> dict[str, str]:
        return {"seen": "yes"}

    @open_.get("/also-added")
    async def also_added() -> dict[str, str]:
        return {"seen": "yes"}

    app.include_router(protected, prefix="/somewhere")
    app.include_router(open_)
    with TestClient(app) as client:
        refused = client.get("/somewhere/added/1")
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "unauthorized"
        assert refused.headers["www-authenticate"] == "Bearer"
        allowed = client.get("/somewhere/added/1", headers={"Authorization": "Bearer s3cret"})
        assert allowed.status_code == 200 and allowed.json() == {"seen": "yes"}
        assert client.get("/also-added").status_code == 200


def test_without_api_key_nothing_is_protected(tiny_model_dir: Path) -> None:
    app = create_app(Settings(model_dir=tiny_model_dir, threads=1))
    protected = APIRouter(route_class=ApiKeyRoute)

    @protected.get("/added")
    async def added() -> dict[str, str]:
        return {"seen": "yes"}

    app.include_router(protected)
    with TestClient(app) as client:
        assert client.get("/added").status_code == 200


def test_a_request_without_the_key_is_refused_before_its_body_is_read(
    tiny_model_dir: Path,
) -> None:
    app = create_app(Settings(model_dir=tiny_model_dir, threads=1, api_key="s3cret"))
    with TestClient(app) as client:
        # Not JSON: a 401 rather than a 400 shows the body was never parsed.
        response = client.post(
            "/classify", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401
        v2 = client.post("/v2/models/tiny/infer", content=b"{not json")
        assert v2.status_code == 401 and "API key" in v2.json()["error"]
