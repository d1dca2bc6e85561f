"""The Open Inference Protocol routes with the real PyPI Triton client (tritonclient[http]) against
the real server (uvicorn subprocess), the way a KServe/Triton user would call them."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from app.core.artifacts import WEIGHTS_FILE, load_artifacts
from tests.support.artifacts import BUNDLED_MODEL, make_artifacts
from tests.support.servers import Server, start_server, stop_server

TEXTS = ["A gripping, beautifully acted film.", "Two hours I will never get back.", "Meh."]
MODEL = load_artifacts(BUNDLED_MODEL)


def client_of(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))


@pytest.fixture(scope="module")
def client(bundled_server: Server) -> Iterator[triton.InferenceServerClient]:
    client = client_of(bundled_server)
    yield client
    client.close()


def text_input(texts: list[str], shape: list[int], binary_data: bool) -> triton.InferInput:
    tensor = triton.InferInput("TEXT", shape, "BYTES")
    tensor.set_data_from_numpy(np.array(texts, dtype=object).reshape(shape), binary_data)
    return tensor


def classify(server: Server, texts: list[str]) -> list[dict[str, object]]:
    response = httpx.post(server.base_url + "/classify", json={"texts": texts})
    assert response.status_code == 200, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL.name)
    assert client.is_model_ready(MODEL.name, MODEL.version)
    assert not client.is_model_ready("no-such-model")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata(MODEL.name, MODEL.version)
    assert metadata["name"] == MODEL.name and metadata["versions"] == [MODEL.version]
    assert metadata["inputs"] == [{"name": "TEXT", "datatype": "BYTES", "shape": [-1]}]
    probabilities, label = metadata["outputs"]
    assert probabilities["shape"] == [-1, len(MODEL.labels)]
    assert probabilities["parameters"]["labels"] == MODEL.labels
    assert label == {"name": "LABEL", "datatype": "BYTES", "shape": [-1]}


@pytest.mark.parametrize("binary_data", [True, False], ids=["binary (default)", "json"])
@pytest.mark.parametrize("shape", [[3], [3, 1]])
def test_infer_equals_classify(
    bundled_server: Server,
    client: triton.InferenceServerClient,
    binary_data: bool,
    shape: list[int],
) -> None:
    outputs = [
        triton.InferRequestedOutput(name, binary_data=binary_data)
        for name in ("PROBABILITIES", "LABEL")
    ]
    result = client.infer(
        MODEL.name,
        [text_input(TEXTS, shape, binary_data)],
        outputs=None if binary_data else outputs,  # None: the client's default, all binary
        request_id="req-1",
    )
    response = result.get_response()
    assert response["id"] == "req-1" and response["model_version"] == MODEL.version
    assert all(("data" in o) != binary_data for o in response["outputs"])
    expected = classify(bundled_server, TEXTS)
    probabilities = result.as_numpy("PROBABILITIES")
    assert probabilities.dtype == np.float32 and probabilities.shape == (3, len(MODEL.labels))
    for row, want in zip(probabilities, expected, strict=True):
        assert want["probabilities"] == pytest.approx(
            dict(zip(MODEL.labels, row, strict=True)), abs=1e-6
        )
    # The client gives bytes for binary BYTES data, str for JSON data.
    labels = [
        label if isinstance(label, str) else label.decode() for label in result.as_numpy("LABEL")
    ]
    assert labels == [want["label"] for want in expected]


def test_one_output_asked_for_is_the_only_one_sent(client: triton.InferenceServerClient) -> None:
    result = client.infer(
        MODEL.name,
        [text_input(TEXTS, [3], binary_data=True)],
        outputs=[triton.InferRequestedOutput("LABEL")],
    )
    assert [o["name"] for o in result.get_response()["outputs"]] == ["LABEL"]
    assert result.as_numpy("PROBABILITIES") is None


@pytest.mark.parametrize(
    ("model", "tensor", "status", "message"),
    [
        ("no-such-model", None, "404", "unknown model 'no-such-model'"),
        (MODEL.name, ["fine", " "], "400", "input 'TEXT': texts.1: empty or whitespace-only text"),
        (MODEL.name, ["x" * 20_001], "400", "at most 20000"),
    ],
)
def test_errors_raise_with_the_servers_message(
    bundled_server: Server,
    client: triton.InferenceServerClient,
    model: str,
    tensor: list[str] | None,
    status: str,
    message: str,
) -> None:
    texts = tensor or ["fine"]
    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, [text_input(texts, [len(texts)], binary_data=True)])
    assert raised.value.status() == status
    assert message in raised.value.message()
    # The message is the server's own, as plain HTTP shows it.
    plain = httpx.post(
        f"{bundled_server.base_url}/v2/models/{model}/infer",
        json={
            "inputs": [{"name": "TEXT", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]
        },
    )
    assert str(plain.status_code) == status
    assert plain.json() == {"error": raised.value.message()}


def test_wrong_tensor_is_a_400(client: triton.InferenceServerClient) -> None:
    tensor = triton.InferInput("INPUT0", [1], "INT32")
    tensor.set_data_from_numpy(np.array([1], dtype=np.int32))
    with pytest.raises(InferenceServerException, match="takes one input, 'TEXT'") as raised:
        client.infer(MODEL.name, [tensor])
    assert raised.value.status() == "400"


def test_model_that_failed_to_load_is_not_ready(tmp_path: Path) -> None:
    model_dir = make_artifacts(tmp_path / "model")
    (model_dir / WEIGHTS_FILE).write_bytes(b"garbage")
    server = start_server({"MODEL_DIR": str(model_dir)}, wait_for="/health/live")
    client = client_of(server)
    try:
        assert client.is_server_live()
        assert not client.is_server_ready()
        assert not client.is_model_ready("tiny")
        with pytest.raises(InferenceServerException, match=WEIGHTS_FILE) as raised:
            client.infer("tiny", [text_input(["funny"], [1], binary_data=True)])
        assert raised.value.status() == "503"
    finally:
        client.close()
        stop_server(server)


def test_api_key_applies_to_infer(tmp_path: Path) -> None:
    server = start_server({"MODEL_DIR": str(make_artifacts(tmp_path / "model")), "API_KEY": "k3y"})
    client = client_of(server)
    try:
        assert client.is_model_ready("tiny")  # health and metadata stay open
        tensor = [text_input(["funny"], [1], binary_data=True)]
        with pytest.raises(InferenceServerException, match="API key") as raised:
            client.infer("tiny", tensor)
        assert raised.value.status() == "401"
        result = client.infer("tiny", tensor, headers={"Authorization": "Bearer k3y"})
        assert result.as_numpy("LABEL")[0].decode() in ("neg", "pos")
    finally:
        client.close()
        stop_server(server)
