"""Property-based tests of the request path: whatever bytes arrive, the answer is a 4xx in the one
error shape or a valid classification, never a 5xx. Lone surrogates ("\\ud800" in JSON) are
accepted like any other character the vocabulary does not know."""

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.main import create_app
from app.settings import Settings
from tests.support.artifacts import make_artifacts

MAX_TEXTS, MAX_CHARS, MAX_LENGTH = 8, 60, 12
ERROR_TYPES = {"validation", "too_large", "overloaded", "unauthorized", "not_ready", "not_found"}

# Every kind of code point, plus the ones known to trip text handling.
TRICKY = ["\x00", "\u200b", "\u200d", "\u202e", "\u0301", "\ufeff", "\u05d0\u05d1", "👩‍👩‍👧", "ﷺ"]
PIECES = st.one_of(
    st.characters(),  # any category but surrogates
    st.characters(categories=["Cs"]),  # lone surrogates
    st.sampled_from(TRICKY),
    st.just(" "),
)
TEXT = st.lists(PIECES, max_size=40).map("".join)
TEXTS = st.lists(TEXT, max_size=MAX_TEXTS + 2)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner),
    max_leaves=12,
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    model_dir = make_artifacts(tmp_path_factory.mktemp("fuzz") / "model", max_length=MAX_LENGTH)
    app = create_app(
        Settings(
            model_dir=model_dir,
            threads=1,
            max_texts_per_request=MAX_TEXTS,
            max_text_chars=MAX_CHARS,
            max_body_bytes=64 * 1024,
        )
    )
    with TestClient(app) as c:
        deadline = time.monotonic() + 30
        while c.get("/health/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield c


def post(client: TestClient, body: bytes) -> Any:
    response = client.post("/classify", content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500, response.text
    payload = response.json()
    if response.status_code != 200:
        assert set(payload) == {"error"} and payload["error"]["type"] in ERROR_TYPES
    return response.status_code, payload


def is_valid(texts: list[str]) -> bool:
    return 1 <= len(texts) <= MAX_TEXTS and all(t.strip() and len(t) <= MAX_CHARS for t in texts)


@FUZZ
@given(texts=TEXTS, escape_all=st.booleans())
def test_any_unicode_texts_give_a_result_or_a_4xx(
    client: TestClient, texts: list[str], escape_all: bool
) -> None:
    # All non-ASCII as \uXXXX escapes, or raw UTF-8 (lone surrogates as their 3-byte forms,
    # which strict UTF-8 forbids; the JSON decoder lets them through like the escapes).
    body = json.dumps({"texts": texts}, ensure_ascii=escape_all).encode("utf-8", "surrogatepass")
    status, payload = post(client, body)
    if not is_valid(texts):
        assert status in (400, 422)
        return
    assert status == 200, payload
    results = payload["results"]
    assert len(results) == len(texts)
    for result in results:
        probabilities = result["probabilities"]
        assert set(probabilities) == {"neg", "pos"}
        assert all(math.isfinite(p) and 0 <= p <= 1 for p in probabilities.values())
        assert math.isclose(sum(probabilities.values()), 1, abs_tol=1e-5)
        assert result["score"] == probabilities[result["label"]] == max(probabilities.values())
        assert result["truncated"] == (result["tokens"] > MAX_LENGTH)


@FUZZ
@given(body=JSON_VALUES | st.lists(JSON_VALUES, max_size=4).map(lambda texts: {"texts": texts}))
def test_any_json_body_gives_no_5xx(client: TestClient, body: Any) -> None:
    post(client, json.dumps(body).encode("utf-8", "surrogatepass"))


@FUZZ
@given(body=st.binary(max_size=200))
def test_any_bytes_give_no_5xx(client: TestClient, body: bytes) -> None:
    post(client, body)
