"""app.middleware in-process: body size limit, X-Request-ID, and a JSON 500 for the unexpected."""

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.clients import client_for, wait_ready

JSON = {"content-type": "application/json"}


@pytest.fixture
def client(tiny_model_dir: Path) -> Iterator[TestClient]:
    with client_for(tiny_model_dir, max_body_bytes=200) as c:
        wait_ready(c)
        yield c


def test_body_over_the_limit_is_refused_unparsed(client: TestClient) -> None:
    # Not JSON at all: a 413 rather than a 400 shows the body was never parsed.
    response = client.post("/classify", content=b"{" * 201, headers=JSON)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "too_large"
    assert "200 bytes" in response.json()["error"]["message"]


def test_streamed_body_is_counted_without_content_length(client: TestClient) -> None:
    def chunks(count: int) -> Iterator[bytes]:
        yield b'{"texts": ["'
        for _ in range(count):
            yield b"funny " * 5
        yield b'"]}'

    refused = client.post("/classify", content=chunks(20), headers=JSON)
    assert "content-length" not in refused.request.headers
    assert refused.status_code == 413 and refused.json()["error"]["type"] == "too_large"
    accepted = client.post("/classify", content=chunks(2), headers=JSON)
    assert accepted.status_code == 200 and len(accepted.json()["results"]) == 1


def test_valid_request_id_is_echoed_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        response = client.post(
            "/classify", json={"texts": ["funny"]}, headers={"X-Request-ID": "order-42.retry_1"}
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "order-42.retry_1"
    lines = [r.getMessage() for r in caplog.records if "order-42.retry_1" in r.getMessage()]
    assert len(lines) == 1 and "POST /classify 200" in lines[0]


@pytest.mark.parametrize(
    "given", [None, b"", b"has space", b"semi;colon", b"x" * 129, "ünï".encode()]
)
def test_missing_or_invalid_request_id_is_replaced(client: TestClient, given: bytes | None) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    response = client.post("/classify", json={"texts": []}, headers=headers)
    assert response.status_code == 422  # error responses carry the id too
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_request_ids_are_unique_per_request(client: TestClient) -> None:
    ids = {client.get("/health/live").headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20


def test_unexpected_error_is_a_json_500_without_internals(
    client: TestClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: object) -> None:
        raise RuntimeError("secret detail in /srv/app/internal.py")

    monkeypatch.setattr("app.api.routes.ModelInfo", broken)
    response = client.get("/model", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "internal"
    assert "secret" not in response.text and "/srv" not in response.text
    assert "Traceback" not in response.text
    error_id = re.fullmatch(r"internal error \(error id (\w+)\)", error["message"])
    assert error_id is not None
    assert response.headers["x-request-id"] == "trace-me"
    # The id in the response leads to the traceback in the log.
    logged = [r for r in caplog.records if error_id[1] in r.getMessage()]
    assert len(logged) == 1 and "trace-me" in logged[0].getMessage()
    assert logged[0].exc_info is not None and "secret detail" in str(logged[0].exc_info[1])
    # The service keeps working.
    assert client.post("/classify", json={"texts": ["funny"]}).status_code == 200
