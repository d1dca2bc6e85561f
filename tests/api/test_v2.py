"""The Open Inference Protocol routes in-process: tensor shapes, binary data, outputs, errors in the
protocol's shape, and the same limits, metrics and API key as /classify."""

import json
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.artifacts import WEIGHTS_FILE
from app.engines.torch_eager import TorchEngine
from tests.support.artifacts import TEXTS
from tests.support.clients import client_for, serving_state, wait_for, wait_ready
from tests.support.metrics import metric, metric_total

INFER = "/v2/models/tiny/infer"


@pytest.fixture
def client(tiny_model_dir: Path) -> Iterator[TestClient]:
    with client_for(tiny_model_dir, max_texts_per_request=8, max_text_chars=200) as c:
        wait_ready(c)
        yield c


def text_input(data: list[Any], shape: list[int]) -> dict[str, Any]:
    return {"name": "TEXT", "datatype": "BYTES", "shape": shape, "data": data}


def infer(client: TestClient, body: dict[str, Any], path: str = INFER) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def classify_probabilities(client: TestClient, texts: list[str]) -> list[list[float]]:
    results = client.post("/classify", json={"texts": texts}).json()["results"]
    return [[r["probabilities"]["neg"], r["probabilities"]["pos"]] for r in results]


def outputs_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {output["name"]: output for output in body["outputs"]}


def length_prefixed(texts: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(text)) + text for text in texts)


@pytest.mark.parametrize(
    ("data", "shape"),
    [
        (TEXTS, [4]),
        (TEXTS, [4, 1]),  # flat data, as the spec allows
        ([[text] for text in TEXTS], [4, 1]),  # nested, as many clients send [N, 1]
    ],
)
def test_infer_matches_classify(client: TestClient, data: list[Any], shape: list[int]) -> None:
    body = infer(client, {"inputs": [text_input(data, shape)]})
    assert body["model_name"] == "tiny" and body["model_version"] == "test"
    assert "id" not in body
    outputs = outputs_of(body)
    probabilities = outputs["PROBABILITIES"]
    assert probabilities["datatype"] == "FP32" and probabilities["shape"] == [4, 2]
    expected = classify_probabilities(client, TEXTS)
    got = np.array(probabilities["data"]).reshape(4, 2)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert outputs["LABEL"] == {
        "name": "LABEL",
        "datatype": "BYTES",
        "shape": [4],
        "data": [["neg", "pos"][int(np.argmax(row))] for row in expected],
    }


def test_versioned_route_and_id_echo(client: TestClient) -> None:
    body = infer(
        client,
        {"id": "abc-1", "inputs": [text_input(["funny"], [1])]},
        "/v2/models/tiny/versions/test/infer",
    )
    assert body["id"] == "abc-1"


def test_only_the_outputs_asked_for(client: TestClient) -> None:
    body = infer(client, {"inputs": [text_input(["funny"], [1])], "outputs": [{"name": "LABEL"}]})
    assert [output["name"] for output in body["outputs"]] == ["LABEL"]


def test_binary_in_and_out_without_content_type(client: TestClient) -> None:
    """What tritonclient sends by default: no Content-Type, a JSON header, length-prefixed texts,
    every output asked for as binary."""
    texts = ["funny", "dull , lifeless and far too long", "naïve café"]
    raw = length_prefixed([text.encode() for text in texts])
    header = (
        '{"id": "b1", "parameters": {"binary_data_output": true}, "inputs": [{"name": "TEXT", '
        f'"datatype": "BYTES", "shape": [3, 1], "parameters": {{"binary_data_size": {len(raw)}}}}}]}}'
    ).encode()
    response = client.post(
        INFER, content=header + raw, headers={"Inference-Header-Content-Length": str(len(header))}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    split = int(response.headers["inference-header-content-length"])
    head = json.loads(response.content[:split])
    assert head["id"] == "b1"
    probabilities, labels = head["outputs"]
    assert "data" not in probabilities and "data" not in labels
    p_size = probabilities["parameters"]["binary_data_size"]
    l_size = labels["parameters"]["binary_data_size"]
    assert len(response.content) == split + p_size + l_size
    got = np.frombuffer(response.content[split : split + p_size], dtype="<f4").reshape(3, 2)
    np.testing.assert_allclose(got, classify_probabilities(client, texts), atol=1e-6)
    label_bytes = response.content[split + p_size :]
    expected_labels = [["neg", "pos"][int(np.argmax(row))].encode() for row in got]
    assert label_bytes == length_prefixed(expected_labels)


def test_binary_per_output_overrides_the_request_default(client: TestClient) -> None:
    response = client.post(
        INFER,
        json={
            "parameters": {"binary_data_output": True},
            "inputs": [text_input(["funny"], [1])],
            "outputs": [{"name": "PROBABILITIES", "parameters": {"binary_data": False}}],
        },
    )
    assert response.status_code == 200
    assert "inference-header-content-length" not in response.headers
    assert len(response.json()["outputs"][0]["data"]) == 2


def binary_request(header: str, raw: bytes, header_length: str | None = None) -> dict[str, Any]:
    body = header.encode() + raw
    return {
        "content": body,
        "headers": {"Inference-Header-Content-Length": header_length or str(len(header))},
    }


TEXT_HEADER = '{"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": %d}}]}'


@pytest.mark.parametrize(
    ("request_kwargs", "fragment"),
    [
        ({"content": b"{not json"}, "Invalid JSON"),
        ({"content": b""}, "Invalid JSON"),
        ({"json": {"inputs": []}}, "inputs"),
        ({"json": {"inputs": [text_input(["a"], [1]) | {"name": "INPUT0"}]}}, "one input, 'TEXT'"),
        ({"json": {"inputs": [text_input(["a"], [1]) | {"datatype": "FP32"}]}}, "BYTES"),
        ({"json": {"inputs": [text_input(["a", "b"], [3])]}}, "holds 3 texts, got 2"),
        ({"json": {"inputs": [text_input(["a", "b"], [1, 2])]}}, "[N] or [N, 1]"),
        ({"json": {"inputs": [text_input([], [0])]}}, "N >= 1"),
        ({"json": {"inputs": [text_input(["a", 3], [2])]}}, "element 1 is not a string"),
        ({"json": {"inputs": [text_input(["a", " "], [2])]}}, "texts.1: empty"),
        ({"json": {"inputs": [text_input(["x" * 201], [1])]}}, "at most 200"),
        ({"json": {"inputs": [text_input(["a"] * 9, [9])]}}, "at most 8"),
        ({"json": {"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [1]}]}}, "no data"),
        (
            {"json": {"inputs": [text_input(["a"], [1])], "outputs": [{"name": "SCORES"}]}},
            "unknown output 'SCORES'",
        ),
        (
            {
                "json": {
                    "inputs": [text_input(["a"], [1])],
                    "outputs": [{"name": "LABEL", "parameters": {"classification": 2}}],
                }
            },
            "classification extension",
        ),
        (binary_request(TEXT_HEADER % 10, length_prefixed([b"funny"])), "binary_data_size is 10"),
        (binary_request(TEXT_HEADER % 6, b"\x05\x00\x00\x00fu"), "runs past the data"),
        (binary_request(TEXT_HEADER % 2, b"\x05\x00"), "inside an element's length"),
        (binary_request(TEXT_HEADER % 6, length_prefixed([b"\xff\xfe"])), "not valid UTF-8"),
        (binary_request(TEXT_HEADER % 9, length_prefixed([b"funny"]), "99999"), "within the body"),
        (binary_request(TEXT_HEADER % 9, length_prefixed([b"funny"]), "-1"), "byte count"),
        (
            binary_request(
                '{"inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}',
                b"xx",
            ),
            "no input declares",
        ),
    ],
)
def test_bad_request_is_a_400_in_the_protocols_shape(
    client: TestClient, request_kwargs: dict[str, Any], fragment: str
) -> None:
    response = client.post(INFER, **request_kwargs)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert isinstance(error, str) and fragment in error


@pytest.mark.parametrize(
    ("method", "path", "fragment"),
    [
        ("get", "/v2/models/other", "unknown model 'other'"),
        ("get", "/v2/models/other/ready", "unknown model 'other'"),
        ("get", "/v2/models/tiny/versions/2", "unknown version '2'"),
        ("post", "/v2/models/other/infer", "unknown model 'other'"),
        ("post", "/v2/models/tiny/versions/2/infer", "unknown version '2'"),
    ],
)
def test_unknown_model_or_version_is_a_404(
    client: TestClient, method: str, path: str, fragment: str
) -> None:
    response = client.request(method, path, json={"inputs": [text_input(["a"], [1])]})
    assert response.status_code == 404
    assert fragment in response.json()["error"]


def test_project_routes_keep_their_error_shape(client: TestClient) -> None:
    assert client.post("/classify", json={"texts": []}).json()["error"]["type"] == "validation"
    assert client.get("/nope").json()["error"]["type"] == "not_found"
    assert isinstance(client.get("/v2/nope").json()["error"], str)


def test_health_and_metadata(client: TestClient) -> None:
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/tiny/ready").json() == {"name": "tiny", "ready": True}
    assert client.get("/v2/models/tiny/versions/test/ready").status_code == 200
    metadata = client.get("/v2/models/tiny").json()
    assert metadata == client.get("/v2/models/tiny/versions/test").json()
    assert metadata["versions"] == ["test"]
    assert metadata["outputs"][0]["parameters"] == {"labels": ["neg", "pos"]}


def test_draining_server_is_not_ready(client: TestClient) -> None:
    client.app.state.serving.begin_shutdown()  # type: ignore[attr-defined]
    for path in ("/v2/health/ready", "/v2/models/tiny/ready"):
        response = client.get(path)
        assert response.status_code == 503 and response.json() == {"error": "shutting down"}
    assert client.get("/health/ready").status_code == 503  # the two readiness probes agree


def test_model_that_failed_to_load_answers_503(tiny_model_dir: Path) -> None:
    (tiny_model_dir / WEIGHTS_FILE).write_bytes(b"garbage")
    with client_for(tiny_model_dir) as c:
        assert c.get("/v2/health/live").status_code == 200
        for response in (
            c.get("/v2/health/ready"),
            c.get("/v2/models/tiny"),
            c.post(INFER, json={"inputs": [text_input(["a"], [1])]}),
        ):
            assert response.status_code == 503
            assert WEIGHTS_FILE in response.json()["error"]


def test_overloaded_is_a_429_with_retry_after(tiny_model_dir: Path) -> None:
    with client_for(tiny_model_dir, max_queue_texts=2) as c:
        wait_ready(c)
        response = c.post(INFER, json={"inputs": [text_input(["a", "b", "c"], [3])]})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert "MAX_QUEUE_TEXTS=2" in response.json()["error"]


def test_api_key_guards_infer_only(tiny_model_dir: Path) -> None:
    body = {"inputs": [text_input(["a"], [1])]}
    with client_for(tiny_model_dir, api_key="s3cret") as c:
        wait_ready(c)
        refused = c.post(INFER, json=body)
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
        assert c.post("/v2/models/tiny/versions/test/infer", json=body).status_code == 401
        assert c.post(INFER, json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/v2/models/tiny").status_code == 200
        assert c.get("/v2/health/ready").status_code == 200


def test_metrics_count_oip_requests(client: TestClient) -> None:
    latency = (
        'rnn_classifier_request_duration_seconds_count{path="/v2/models/{name}/infer",'
        'protocol="rest",status='
    )
    predictions = "rnn_classifier_predictions_total"
    # Every series exists once one request of its kind was answered; then count from there.
    infer(client, {"inputs": [text_input(TEXTS, [4])]})
    client.post(INFER, json={"inputs": []})
    before = metric_total(client, predictions)
    ok, bad = metric(client, latency + '"2xx"}'), metric(client, latency + '"4xx"}')
    infer(client, {"inputs": [text_input(TEXTS, [4])]})
    client.post(INFER, json={"inputs": []})
    assert metric_total(client, predictions) == before + 4
    assert metric(client, latency + '"2xx"}') == ok + 1
    assert metric(client, latency + '"4xx"}') == bad + 1


def test_openapi_documents_the_routes_and_both_error_shapes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/versions/{version}/ready",
    ):
        assert "get" in paths[path]
    infer_op = paths["/v2/models/{name}/infer"]["post"]
    # The binary tensor extension is described in words, not as a generated header or body.
    assert set(infer_op["requestBody"]["content"]) == {"application/json"}
    assert "Inference-Header-Content-Length" in infer_op["requestBody"]["description"]
    assert [p["in"] for p in infer_op["parameters"]] == ["path"]
    ok = infer_op["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "application/octet-stream"}
    assert "Inference-Header-Content-Length" in ok["headers"]
    for control in ("load", "unload"):
        responses = paths[f"/v2/repository/models/{{name}}/{control}"]["post"]["responses"]
        assert {"400", "409"} <= set(responses)
    assert {"400", "404", "429", "503"} <= set(infer_op["responses"])
    oip_error = infer_op["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    classify_error = paths["/classify"]["post"]["responses"]["400"]["content"]["application/json"]
    assert oip_error.endswith("/OipError") and classify_error["schema"]["$ref"].endswith(
        "/ErrorBody"
    )


def test_oip_and_classify_requests_share_batches(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    release.set()  # warm-up runs freely
    batch_sizes: list[int] = []
    predict = TorchEngine.predict

    def held(self: TorchEngine, sequences: list[list[int]]) -> np.ndarray:
        batch_sizes.append(len(sequences))
        entered.set()
        release.wait(30)
        return predict(self, sequences)

    monkeypatch.setattr(TorchEngine, "predict", held)
    with client_for(tiny_model_dir, inference_thread="on", engine="torch") as c:
        wait_ready(c)
        queue = serving_state(c).registry.resolve().runner.queue
        release.clear()
        entered.clear()
        batch_sizes.clear()
        with ThreadPoolExecutor(3) as pool:
            running = pool.submit(c.post, "/classify", json={"texts": ["funny"]})
            entered.wait(30)  # the model is busy with it; the next requests queue up
            oip = pool.submit(c.post, INFER, json={"inputs": [text_input(["dull", "funny"], [2])]})
            wait_for(lambda: len(queue) == 2)
            classify = pool.submit(c.post, "/classify", json={"texts": ["lovely"]})
            wait_for(lambda: len(queue) == 3)
            release.set()
            responses = [running.result(), oip.result(), classify.result()]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert batch_sizes == [1, 3]  # the OIP request's texts ran in one batch with /classify's
