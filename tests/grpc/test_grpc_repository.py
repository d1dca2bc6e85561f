"""Keys and the model repository over gRPC, as tritonclient.grpc calls them: API_KEY on
inference, ADMIN_API_KEY on the repository RPCs, and loads, unloads and rollbacks under
concurrent gRPC traffic that fail no call."""

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tritonclient.utils import InferenceServerException

from tests.grpc.support import client_of, text_input
from tests.support.artifacts import make_repository
from tests.support.servers import Server, start_server, stop_server

ADMIN = {"authorization": "Bearer adm1n"}
KEYED = {"API_KEY": "s3cret", "ADMIN_API_KEY": "adm1n"}


@pytest.fixture(scope="module")
def explicit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = make_repository(tmp_path_factory.mktemp("repo"), {"alpha": [1, 2], "beta": [1]})
    env = {"MODEL_REPOSITORY": str(root), "MODEL_CONTROL": "explicit", **KEYED}
    server = start_server(env)
    yield server
    stop_server(server)


def status_of(call: object) -> str:
    assert isinstance(call, InferenceServerException)
    return str(call.status())


def test_inference_needs_api_key_and_the_repository_the_admin_key(
    explicit_server: Server,
) -> None:
    client = client_of(explicit_server)
    texts = [text_input(["funny"])]
    with pytest.raises(InferenceServerException, match="API key") as refused:
        client.infer("alpha", texts)
    assert status_of(refused.value) == "StatusCode.UNAUTHENTICATED"
    assert client.infer("alpha", texts, headers={"authorization": "Bearer s3cret"})
    assert client.infer("alpha", texts, headers={"x-api-key": "s3cret"})
    # Metadata and health need no key, as over REST.
    assert client.is_model_ready("alpha") and client.get_model_metadata("alpha")
    for headers in ({}, {"authorization": "Bearer s3cret"}):  # API_KEY is not the admin key
        with pytest.raises(InferenceServerException, match="ADMIN_API_KEY") as refused:
            client.get_model_repository_index(headers=headers)
        assert status_of(refused.value) == "StatusCode.UNAUTHENTICATED"
    index = client.get_model_repository_index(headers=ADMIN, as_json=True)["models"]
    assert {"name": "alpha", "version": "2", "state": "READY"} in index


def test_load_unload_and_rollback_under_concurrent_calls_fail_none(
    explicit_server: Server,
) -> None:
    admin = client_of(explicit_server)
    stop = threading.Event()
    failures: list[str] = []
    versions: set[str] = set()
    calls = 0
    lock = threading.Lock()

    def hammer() -> None:
        nonlocal calls
        client = client_of(explicit_server)
        while not stop.is_set():
            try:
                result = client.infer(
                    "alpha", [text_input(["funny", "a dull film"])], headers={"x-api-key": "s3cret"}
                )
            except InferenceServerException as exc:
                with lock:
                    failures.append(f"{exc.status()}: {exc.message()}")
                continue
            with lock:
                calls += 1
                versions.add(result.get_response().model_version)
        client.close()

    with ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(hammer)
        for cycle in range(12):
            policy = {"version_policy": {"specific": {"versions": [1 + cycle % 2]}}}
            admin.load_model("alpha", headers=ADMIN, config=json.dumps(policy))
            if cycle % 4 == 3:
                admin.unload_model("beta", headers=ADMIN)
                assert not admin.is_model_ready("beta")
                admin.load_model("beta", headers=ADMIN)
                assert admin.is_model_ready("beta")
        stop.set()
    admin.load_model("alpha", headers=ADMIN)  # back to its own policy
    assert failures == []
    assert calls > 50 and versions == {"1", "2"}
    version = admin.infer("alpha", [text_input(["x"])], headers={"x-api-key": "s3cret"})
    assert version.get_response().model_version == "2"


def test_bad_loads_answer_their_status(explicit_server: Server) -> None:
    client = client_of(explicit_server)
    with pytest.raises(InferenceServerException) as bad:
        client.load_model("alpha", headers=ADMIN, config="{not json")
    assert status_of(bad.value) == "StatusCode.INVALID_ARGUMENT"
    with pytest.raises(InferenceServerException, match="not taken through the API") as files:
        client.load_model("alpha", headers=ADMIN, files={"file:1/model.onnx": b"x"})
    assert status_of(files.value) == "StatusCode.INVALID_ARGUMENT"
    with pytest.raises(InferenceServerException, match="no model 'gamma'") as missing:
        client.load_model("gamma", headers=ADMIN)
    assert status_of(missing.value) == "StatusCode.FAILED_PRECONDITION"


def test_load_on_a_server_not_in_explicit_mode_is_a_failed_precondition(tmp_path: Path) -> None:
    root = make_repository(tmp_path / "repo", {"alpha": [1]})
    server = start_server({"MODEL_REPOSITORY": str(root), "ADMIN_API_KEY": "adm1n"})
    try:
        client = client_of(server)
        for call in (client.load_model, client.unload_model):
            with pytest.raises(InferenceServerException, match="MODEL_CONTROL=explicit") as no:
                call("alpha", headers=ADMIN)
            assert status_of(no.value) == "StatusCode.FAILED_PRECONDITION"
        assert client.is_model_ready("alpha")
    finally:
        stop_server(server)
