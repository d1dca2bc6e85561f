"""The HTTP API in-process (TestClient runs the lifespan, so the model really loads)."""

import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.artifacts import WEIGHTS_FILE
from tests.support.artifacts import TEXTS
from tests.support.clients import client_for, wait_ready
from tests.support.metrics import metric, metric_total


@pytest.fixture
def client(tiny_model_dir: Path) -> Iterator[TestClient]:
    with client_for(tiny_model_dir, max_texts_per_request=8, max_text_chars=200) as c:
        wait_ready(c)
        yield c


def classify(client: TestClient, texts: list[str]) -> list[dict[str, Any]]:
    response = client.post("/classify", json={"texts": texts})
    assert response.status_code == 200, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


def test_classify_answers_every_text_in_order(client: TestClient) -> None:
    response = client.post("/classify", json={"texts": TEXTS})
    body = response.json()
    assert body["model"] == {"name": "tiny", "version": "test"}
    assert len(body["results"]) == len(TEXTS)
    for result in body["results"]:
        assert set(result["probabilities"]) == {"neg", "pos"}
        assert math.isclose(sum(result["probabilities"].values()), 1.0, abs_tol=1e-5)
        assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)
        assert result["score"] == result["probabilities"][result["label"]]
    # Order: each text's answer is the one it gets alone.
    for text, result in zip(TEXTS, body["results"], strict=True):
        alone = classify(client, [text])[0]
        for label, p in alone["probabilities"].items():
            assert abs(p - result["probabilities"][label]) < 1e-5


def test_long_text_is_truncated_and_says_so(client: TestClient) -> None:
    result = classify(client, ["funny " * 30])[0]
    assert result["truncated"] is True and result["tokens"] == 30


def test_truncation_reject_mode(tiny_model_dir: Path) -> None:
    with client_for(tiny_model_dir, truncation="reject") as c:
        wait_ready(c)
        response = c.post("/classify", json={"texts": ["funny " * 30]})
    assert response.status_code == 422
    assert "at most 12" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"texts": []}, 422, "texts"),
        ({"texts": ["ok"] * 9}, 422, "at most 8"),
        ({"texts": ["fine", "  \n\t "]}, 422, "texts.1: empty"),
        ({"texts": [""]}, 422, "texts.0: empty"),
        ({"texts": ["x" * 201]}, 422, "at most 200"),
        ({"texts": "just one string"}, 422, "valid list"),
        ({"texts": ["ok", 3]}, 422, "texts.1"),
        ({"texts": None}, 422, "texts"),
        ({"text": ["typo in the key"]}, 422, "texts"),
        ([1, 2], 422, "body"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    client: TestClient, body: Any, status: int, fragment: str
) -> None:
    response = client.post("/classify", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == "validation" and fragment in error["message"]


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"{not json", {"content-type": "application/json"}),
        (b'{"texts": ["ok"]}', {"content-type": "text/plain"}),
        (b"\xff\xfe", {"content-type": "application/json"}),
    ],
)
def test_body_that_is_not_json_gets_400(
    client: TestClient, content: bytes, headers: dict[str, str]
) -> None:
    response = client.post("/classify", content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "validation"


def test_sized_and_streamed_bodies_get_the_same_answers(client: TestClient) -> None:
    """A body with Content-Length is answered by the fast path, a chunked one by the route."""
    bodies = ({"texts": TEXTS}, {"texts": ["fine", ""]}, {"texts": ["ok"] * 9}, {"texts": 3})
    media_types = ("application/json", "application/vnd.x+json; charset=utf-8", "text/json")
    for body, media_type in itertools.product(bodies, media_types):
        raw, headers = json.dumps(body).encode(), {"content-type": media_type}
        sized = client.post("/classify", content=raw, headers=headers)
        streamed = client.post("/classify", content=iter([raw]), headers=headers)
        assert "content-length" not in streamed.request.headers
        assert (sized.status_code, sized.json()) == (streamed.status_code, streamed.json())


def test_model_info(client: TestClient, tiny_model_dir: Path) -> None:
    info = client.get("/model").json()
    assert info["labels"] == ["neg", "pos"] and info["max_length"] == 12
    assert info["vocab_size"] > 2 and info["parameters"] > 0
    assert len(info["checksum"]) == 64


def test_metrics_follow_prometheus_conventions(client: TestClient) -> None:
    classify(client, TEXTS)
    client.post("/classify", json={"texts": []})
    text = client.get("/metrics").text
    for name in [
        "rnn_classifier_request_duration_seconds_bucket",
        "rnn_classifier_inference_duration_seconds_bucket",
        "rnn_classifier_batch_size_bucket",
        "rnn_classifier_queue_duration_seconds_bucket",
        "rnn_classifier_queue_depth",
        'rnn_classifier_errors_total{protocol="rest",type="validation"}',
    ]:
        assert name in text
    assert 'rnn_classifier_predictions_total{label="' in text


def latency_count(client: TestClient, path: str, status_class: str) -> float:
    return metric(
        client,
        f'rnn_classifier_request_duration_seconds_count{{path="{path}",protocol="rest",'
        f'status="{status_class}"}}',
    )


def test_request_latency_is_recorded_for_every_status(client: TestClient) -> None:
    """Refused and failed requests show in the latency histogram too, by status class."""
    # Every series exists once one request of its kind was answered; then count from there.
    client.post("/classify", json={"texts": ["funny"]})
    client.post("/classify", json={"texts": [""]})
    client.get("/no-such-route")
    before = {s: latency_count(client, "/classify", s) for s in ("2xx", "4xx")}
    unmatched = latency_count(client, "unmatched", "4xx")
    assert client.post("/classify", json={"texts": ["funny"]}).status_code == 200
    assert client.post("/classify", json={"texts": [""]}).status_code == 422
    assert (
        client.post(
            "/classify", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    assert client.get("/no-such-route").status_code == 404
    assert latency_count(client, "/classify", "2xx") == before["2xx"] + 1
    assert latency_count(client, "/classify", "4xx") == before["4xx"] + 2
    assert latency_count(client, "unmatched", "4xx") == unmatched + 1


def test_docs_and_openapi_show_examples(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "examples" in schema["components"]["schemas"]["ClassifyRequest"]
    assert {"400", "422", "429", "503"} <= set(schema["paths"]["/classify"]["post"]["responses"])


def test_broken_artifacts_keep_the_service_not_ready(tiny_model_dir: Path) -> None:
    (tiny_model_dir / WEIGHTS_FILE).write_bytes(b"garbage")
    with client_for(tiny_model_dir) as c:  # the lifespan has tried to load when this returns
        ready = c.get("/health/ready")
        assert ready.status_code == 503
        assert WEIGHTS_FILE in ready.json()["error"]["message"]
        assert c.get("/health/live").status_code == 200
        refused = c.post("/classify", json={"texts": ["hello"]})
        assert refused.status_code == 503 and refused.json()["error"]["type"] == "not_ready"


def test_api_key_guards_classify_only(tiny_model_dir: Path) -> None:
    with client_for(tiny_model_dir, api_key="s3cret") as c:
        wait_ready(c)
        assert c.post("/classify", json={"texts": ["hi"]}).status_code == 401
        wrong = c.post(
            "/classify", json={"texts": ["hi"]}, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "unauthorized"
        assert (
            c.post(
                "/classify", json={"texts": ["hi"]}, headers={"Authorization": "Bearer s3cret"}
            ).status_code
            == 200
        )
        assert (
            c.post("/classify", json={"texts": ["hi"]}, headers={"X-API-Key": "s3cret"}).status_code
            == 200
        )
        assert c.get("/health/ready").status_code == 200
        assert c.get("/metrics").status_code == 200


def test_token_metrics_count_real_and_padded_work(client: TestClient) -> None:
    texts = ["funny", "dull , lifeless and far too long", "a gripping , beautifully acted film"]
    classify(client, texts)  # every series exists from here on
    real, padded = (metric_total(client, name) for name in ("tokens", "padded_tokens"))
    results = classify(client, texts)
    added_real = metric_total(client, "tokens") - real
    added_padded = metric_total(client, "padded_tokens") - padded
    assert added_real == sum(min(r["tokens"], 12) for r in results)  # the tiny model reads 12
    assert added_real <= added_padded <= max(r["tokens"] for r in results) * len(texts)
