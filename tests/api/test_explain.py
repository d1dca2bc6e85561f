"""POST /explain over HTTP: shape, limits, errors, auth, metrics, its own 429 that leaves
/classify alone, and the playground page's headers."""

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.artifacts import BUNDLED_MODEL, TEXTS
from tests.support.clients import client_for, wait_ready
from tests.support.metrics import metric, metric_total


@pytest.fixture
def client(tiny_model_dir: Path) -> Iterator[TestClient]:
    with client_for(tiny_model_dir, max_explain_texts=3, max_text_chars=200) as c:
        wait_ready(c)
        yield c


def explain(client: TestClient, texts: list[str]) -> list[dict[str, Any]]:
    response = client.post("/explain", json={"texts": texts})
    assert response.status_code == 200, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


def test_explain_gives_the_classify_answer_plus_layers_and_attributions(
    client: TestClient,
) -> None:
    texts = TEXTS[:3]
    explained = explain(client, texts)
    classified = client.post("/classify", json={"texts": texts}).json()["results"]
    for explanation, prediction in zip(explained, classified, strict=True):
        for key, value in prediction.items():
            if key == "probabilities":
                for label, p in value.items():
                    assert math.isclose(explanation[key][label], p, abs_tol=1e-5)
            elif key != "score":
                assert explanation[key] == value
        layers = explanation["layers"]
        assert list(layers) == ["input", "embedding", "rnn", "dense", "ngrams", "softmax"]
        assert layers["ngrams"] is None  # the tiny model has no n-gram branch
        length = len(layers["input"]["tokens"])
        assert length == prediction["tokens"]  # the tiny model's max length fits these texts
        assert len(layers["embedding"]["norms"]) == len(layers["rnn"]["step_norms"]) == length
        assert set(explanation["attributions"]) == {"neg", "pos"}
        assert all(len(v) == length for v in explanation["attributions"].values())
        assert layers["softmax"]["label"] == explanation["label"]


def test_unknown_words_are_flagged_and_long_texts_say_they_were_cut(client: TestClient) -> None:
    (result,) = explain(client, ["funny zzzunknownzzz " * 10])
    words = result["layers"]["input"]
    assert result["truncated"] and words["truncated"] and result["tokens"] == 20
    assert len(words["tokens"]) == 12  # the tiny model reads 12
    assert words["tokens"][:2] == ["funny", "zzzunknownzzz"]
    assert words["unknown"][:2] == [False, True]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"texts": ["a", "b", "c", "d"]}, 422, "at most 3"),
        ({"texts": []}, 422, "texts"),
        ({"texts": ["fine", "  "]}, 422, "texts.1: empty"),
        ({"texts": ["x" * 201]}, 422, "at most 200"),
        ({"texts": "not a list"}, 422, "texts"),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    client: TestClient, body: dict[str, Any], status: int, fragment: str
) -> None:
    response = client.post("/explain", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == "validation" and fragment in error["message"]


def test_explain_needs_the_api_key_when_one_is_set(tiny_model_dir: Path) -> None:
    with client_for(tiny_model_dir, api_key="s3cret") as c:
        wait_ready(c)
        refused = c.post("/explain", json={"texts": ["funny"]})
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "unauthorized"
        allowed = c.post(
            "/explain", json={"texts": ["funny"]}, headers={"Authorization": "Bearer s3cret"}
        )
        assert allowed.status_code == 200
        # The playground and its files stay open: the page asks for the key itself.
        assert c.get("/").status_code == 200
        assert c.get("/static/playground.js").status_code == 200


def test_explanations_have_their_own_metrics(client: TestClient) -> None:
    # In-process, the metrics registry is shared by every test: compare before and after.
    explained = metric(client, "rnn_classifier_explain_duration_seconds_count")
    classified = metric_total(client, "rnn_classifier_batch_size_count")
    explain(client, ["funny"])
    assert metric(client, "rnn_classifier_explain_duration_seconds_count") == explained + 1
    assert metric(client, "rnn_classifier_explains_in_flight") == 0
    # Explanations do not go through the classify queue.
    assert metric_total(client, "rnn_classifier_batch_size_count") == classified


def test_playground_page_is_static_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy
    assert "unsafe" not in policy
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline
    for asset in ("/static/playground.js", "/static/playground.css", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200, asset
    assert 'href="/docs"' in page.text


def test_explain_example_is_what_the_bundled_model_answers() -> None:
    with client_for(BUNDLED_MODEL) as c:
        schemas = c.get("/openapi.json").json()["components"]["schemas"]
        request = schemas["ExplainRequest"]["examples"][0]
        (shown,) = schemas["ExplainResponse"]["examples"][0]["results"]
        (got,) = c.post("/explain", json=request).json()["results"]

    def close(a: Any, b: Any) -> bool:
        if isinstance(a, float) or isinstance(b, float):
            return math.isclose(a, b, abs_tol=1e-4)
        if isinstance(a, dict):
            # FastAPI writes the OpenAPI document without nulls, examples included: the answer's
            # `"ngrams": null` (no n-gram branch) is a missing key there.
            a = {k: v for k, v in a.items() if v is not None}
            return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return len(a) == len(b) and all(map(close, a, b))
        return bool(a == b)

    assert close(got, shown), (got, shown)
