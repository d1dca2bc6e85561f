"""Many models and versions, in-process: which version a request gets, what /models and the v2
metadata say, and what explicit load and unload change (the real-server and tritonclient tests
are in tests/e2e/test_repository.py)."""

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.artifacts import CONFIG_FILE, WEIGHTS_FILE
from app.main import create_app
from app.settings import Settings
from tests.support.artifacts import make_repository
from tests.support.clients import serving_state, wait_ready
from tests.support.metrics import exposition

ADMIN = {"Authorization": "Bearer adm1n"}


def client_for_repository(root: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(model_repository=root, threads=1, **settings)))


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    return make_repository(tmp_path / "repo", {"alpha": [1, 2], "beta": [1]})


@pytest.fixture
def explicit(repository: Path) -> Iterator[TestClient]:
    with client_for_repository(
        repository, model_control="explicit", admin_api_key="adm1n", default_model="alpha"
    ) as client:
        wait_ready(client)
        yield client


def classify(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/classify", json={"texts": ["funny", "dull"], **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_a_request_gets_the_model_it_names_or_the_default(explicit: TestClient) -> None:
    assert classify(explicit)["model"] == {"name": "alpha", "version": "2"}
    assert classify(explicit, model="beta")["model"] == {"name": "beta", "version": "1"}
    assert classify(explicit, model="alpha", version="2")["model"]["version"] == "2"
    unknown = explicit.post("/classify", json={"texts": ["x"], "model": "gamma"})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found"
    assert "alpha" in unknown.json()["error"]["message"]
    old = explicit.post("/classify", json={"texts": ["x"], "model": "alpha", "version": "1"})
    assert old.status_code == 404  # latest 1: version 1 is not served
    assert explicit.get("/model", params={"model": "beta"}).json()["name"] == "beta"


def test_without_a_default_a_request_must_name_one_of_several_models(repository: Path) -> None:
    with client_for_repository(repository) as client:
        wait_ready(client)
        refused = client.post("/classify", json={"texts": ["x"]})
        assert refused.status_code == 422
        assert "alpha" in refused.json()["error"]["message"]
        assert "beta" in refused.json()["error"]["message"]
        assert classify(client, model="beta")["model"]["name"] == "beta"


def test_every_version_of_an_all_policy_is_served_and_answers_differently(
    repository: Path,
) -> None:
    (repository / "alpha" / "model.json").write_text(json.dumps({"version_policy": {"all": {}}}))
    with client_for_repository(repository, default_model="alpha") as client:
        wait_ready(client)
        assert client.get("/v2/models/alpha").json()["versions"] == ["1", "2"]
        one = classify(client, version="1")
        two = classify(client, version="2")
        assert classify(client)["model"]["version"] == "2"  # no version: the highest
        assert one["results"][0]["probabilities"] != two["results"][0]["probabilities"]
        v1 = client.post(
            "/v2/models/alpha/versions/1/infer",
            json={
                "inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [1], "data": ["funny"]}]
            },
        )
        assert v1.status_code == 200 and v1.json()["model_version"] == "1"
        states = {
            (m["name"], v["version"]): v["state"]
            for m in client.get("/models").json()["models"]
            for v in m["versions"]
        }
        assert states == {("alpha", "1"): "READY", ("alpha", "2"): "READY", ("beta", "1"): "READY"}


def test_rollback_by_config_then_back_to_the_policy(explicit: TestClient) -> None:
    specific = json.dumps({"version_policy": {"specific": {"versions": [1]}}})
    rollback = explicit.post(
        "/v2/repository/models/alpha/load", json={"parameters": {"config": specific}}, headers=ADMIN
    )
    assert rollback.status_code == 200, rollback.text
    assert classify(explicit)["model"]["version"] == "1"
    assert explicit.post("/v2/repository/models/alpha/load", headers=ADMIN).status_code == 200
    assert classify(explicit)["model"]["version"] == "2"


def test_unloaded_version_is_gone_from_the_metrics(explicit: TestClient) -> None:
    classify(explicit, model="beta")
    assert 'model="beta"' in exposition(explicit)
    assert explicit.post("/v2/repository/models/beta/unload", headers=ADMIN).status_code == 200
    per_version = [
        line
        for line in exposition(explicit).splitlines()
        if 'model="beta"' in line and "load_" not in line  # load duration/failures stay
    ]
    assert per_version == []
    assert explicit.post("/classify", json={"texts": ["x"], "model": "beta"}).status_code == 404
    index = explicit.post("/v2/repository/index", headers=ADMIN).json()
    assert {"name": "beta", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"} in index


def test_control_needs_the_admin_key_and_explicit_mode(repository: Path) -> None:
    with client_for_repository(repository, model_control="explicit", admin_api_key="adm1n") as c:
        wait_ready(c)
        assert c.post("/v2/repository/models/beta/unload").status_code == 401
        wrong = c.post("/v2/repository/models/beta/unload", headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401 and "ADMIN_API_KEY" in wrong.json()["error"]
    with client_for_repository(repository) as c:  # MODEL_CONTROL=none: the repository is fixed
        wait_ready(c)
        refused = c.post("/v2/repository/models/beta/unload")
        assert refused.status_code == 409 and "MODEL_CONTROL=explicit" in refused.json()["error"]
        assert c.post("/classify", json={"texts": ["x"], "model": "beta"}).status_code == 200
    with pytest.raises(ValueError, match="ADMIN_API_KEY"):
        Settings(model_repository=repository, model_control="explicit")


def test_names_outside_the_repository_and_file_uploads_are_refused(explicit: TestClient) -> None:
    for name in ("..", ".hidden", "a%2Fb", "-x"):
        response = explicit.post(f"/v2/repository/models/{name}/load", headers=ADMIN)
        assert response.status_code in (400, 404), (name, response.text)
    upload = explicit.post(
        "/v2/repository/models/alpha/load",
        json={"parameters": {"config": "{}", "file:1/model.safetensors": "AAAA"}},
        headers=ADMIN,
    )
    assert upload.status_code == 400 and "not taken through the API" in upload.json()["error"]


def _add_version(repository: Path, name: str, version: int, source: int) -> Path:
    target = repository / name / str(version)
    shutil.copytree(repository / name / str(source), target)
    return target


def test_a_bad_new_version_is_refused_and_the_old_one_keeps_serving(
    explicit: TestClient, repository: Path
) -> None:
    truncated = _add_version(repository, "alpha", 3, source=2)
    weights = (truncated / WEIGHTS_FILE).read_bytes()
    (truncated / WEIGHTS_FILE).write_bytes(weights[: len(weights) // 2])
    refused = explicit.post("/v2/repository/models/alpha/load", headers=ADMIN)
    assert refused.status_code == 400 and WEIGHTS_FILE in refused.json()["error"]
    assert classify(explicit)["model"]["version"] == "2"
    # Version 1's weights under version 2's known answers, the checksum recomputed: every file
    # verifies, but the model does not answer what its training recorded.
    shutil.rmtree(truncated)
    mismatched = _add_version(repository, "alpha", 3, source=2)
    shutil.copy(repository / "alpha" / "1" / WEIGHTS_FILE, mismatched / WEIGHTS_FILE)
    config = json.loads((mismatched / CONFIG_FILE).read_text())
    config["files"][WEIGHTS_FILE] = hashlib.sha256(
        (mismatched / WEIGHTS_FILE).read_bytes()
    ).hexdigest()
    (mismatched / CONFIG_FILE).write_text(json.dumps(config))
    refused = explicit.post("/v2/repository/models/alpha/load", headers=ADMIN)
    assert refused.status_code == 400 and "known answers differ" in refused.json()["error"]
    assert classify(explicit)["model"]["version"] == "2"
    failures = 'rnn_classifier_model_load_failures_total{model="alpha"}'
    assert any(line.startswith(failures + " 2") for line in exposition(explicit).splitlines())


def test_eviction_takes_the_least_recently_used_idle_version_never_a_busy_one(
    repository: Path,
) -> None:
    make_repository(repository, {"gamma": [1]})
    settings = {"model_control": "explicit", "admin_api_key": "adm1n", "max_loaded_models": 2}
    (repository / "gamma").rename(repository.parent / "gamma")  # not there at start
    with client_for_repository(repository, **settings) as client:
        wait_ready(client)
        registry = serving_state(client).registry
        assert {v.ref.name for v in registry.all()} == {"alpha", "beta"}
        classify(client, model="alpha")  # beta is now the least recently used
        (repository.parent / "gamma").rename(repository / "gamma")
        with registry.use("beta"):  # ... but busy: alpha goes instead
            loaded = client.post("/v2/repository/models/gamma/load", headers=ADMIN)
            assert loaded.status_code == 200, loaded.text
            assert {v.ref.name for v in registry.all()} == {"beta", "gamma"}
            with registry.use("gamma"):  # every other version busy: no room
                full = client.post("/v2/repository/models/alpha/load", headers=ADMIN)
                assert full.status_code == 400 and "MAX_LOADED_MODELS=2" in full.json()["error"]
        index = client.post("/v2/repository/index", headers=ADMIN).json()
        alpha = next(e for e in index if e["name"] == "alpha" and e["version"] == "2")
        assert alpha["state"] == "UNAVAILABLE" and "evicted" in alpha["reason"]
