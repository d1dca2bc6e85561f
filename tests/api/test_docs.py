"""Swagger UI at /docs: served with its own assets (no internet needed), strict headers, examples
that are real, and a real browser that renders it and runs "Try it out" against the service."""

import base64
import hashlib
import math
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.support.artifacts import BUNDLED_MODEL


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_dir=BUNDLED_MODEL, torch_threads=1))) as c:
        yield c


def test_docs_page_loads_nothing_from_elsewhere_and_has_a_strict_policy(
    client: TestClient,
) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "default-src 'none'" in policy
    # Every asset the page names is ours and is served.
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(url.startswith("/docs/static/") for url in assets), assets
    for url in assets:
        assert client.get(url).status_code == 200, url
    # The inline init script runs because the policy carries its hash.
    (script,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy


def test_redoc_is_not_served(client: TestClient) -> None:
    assert client.get("/redoc").status_code == 404


def _example(schema: dict[str, Any], name: str) -> Any:
    return schema["components"]["schemas"][name]["examples"][0]


def test_classify_example_answer_is_what_the_bundled_model_answers(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    request, documented = _example(schema, "ClassifyRequest"), _example(schema, "ClassifyResponse")
    real = client.post("/classify", json=request).json()
    assert real["model"] == documented["model"]
    assert len(real["results"]) == len(documented["results"]) == len(request["texts"])
    for got, shown in zip(real["results"], documented["results"], strict=True):
        assert set(got) == set(shown)
        assert (got["label"], got["truncated"], got["tokens"]) == (
            shown["label"],
            shown["truncated"],
            shown["tokens"],
        )
        for label, p in shown["probabilities"].items():
            assert math.isclose(got["probabilities"][label], p, abs_tol=1e-4)


def test_model_example_has_the_real_shape(client: TestClient) -> None:
    documented = _example(client.get("/openapi.json").json(), "ModelInfo")
    real = client.get("/model").json()
    assert set(documented) == set(real)
    assert {k: real[k] for k in ("name", "labels", "architecture", "checksum")} == {
        k: documented[k] for k in ("name", "labels", "architecture", "checksum")
    }


def test_the_document_declares_the_texts_the_server_refuses() -> None:
    # Not started: the document needs no model.
    settings = Settings(max_texts_per_request=7, max_explain_texts=3, max_text_chars=50)
    app = create_app(settings)
    schema = app.openapi()
    assert app.openapi() is schema
    components, paths = schema["components"]["schemas"], schema["paths"]
    classify = components["ClassifyRequest"]["properties"]["texts"]
    explain = components["ExplainRequest"]["properties"]["texts"]
    assert (classify["maxItems"], explain["maxItems"]) == (7, 3)
    infer = paths["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]
    tensor = infer["application/json"]["schema"]["properties"]["inputs"]["items"]["properties"]
    assert tensor["data"]["maxItems"] == tensor["shape"]["prefixItems"][0]["maximum"] == 7
    text, row = tensor["data"]["items"]["anyOf"]
    texts = [classify["items"], explain["items"], text, row["items"]]
    assert {item["maxLength"] for item in texts} == {50}
    # Empty or whitespace-only, exactly as the server decides it (str.strip), in any regex dialect
    # that reads the escapes: Python's here, schemathesis's Rust one in the fuzz test.
    (pattern,) = {item["pattern"] for item in texts}
    found = re.compile(pattern)
    assert all(
        (found.search(c) is None) == (not c.strip()) for c in map(chr, range(sys.maxunicode + 1))
    )
    # Another app's limits are its own: the routes' shared document parts are not changed.
    default = create_app(Settings()).openapi()["components"]["schemas"]["ClassifyRequest"]
    assert default["properties"]["texts"]["maxItems"] == Settings().max_texts_per_request
