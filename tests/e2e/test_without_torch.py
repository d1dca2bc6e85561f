"""The serving install has no torch: the service, /explain and the trace CLI run on ONNX Runtime
alone, and asking for the torch engine says what to install."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.artifacts import BUNDLED_MODEL, ROOT
from tests.support.servers import start_server, stop_server


@pytest.fixture(scope="module")
def without_torch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which `import torch` fails as if it were not installed (also in worker
    processes): sitecustomize runs first in every interpreter started with it."""
    site = tmp_path_factory.mktemp("no-torch")
    (site / "sitecustomize.py").write_text('import sys\nsys.modules["torch"] = None\n')
    return {"PYTHONPATH": str(site)}


def test_the_service_classifies_and_explains_without_torch(without_torch: dict[str, str]) -> None:
    server = start_server({**without_torch, "MODEL_DIR": str(BUNDLED_MODEL), "WORKERS": "2"})
    try:
        classified = httpx.post(server.base_url + "/classify", json={"texts": ["a great film"]})
        assert classified.status_code == 200, classified.text
        explained = httpx.post(server.base_url + "/explain", json={"texts": ["a great film"]})
        assert explained.status_code == 200, explained.text
        assert explained.json()["results"][0]["label"] == classified.json()["results"][0]["label"]
        assert httpx.get(server.base_url + "/model").json()["engine"] == "onnx"
    finally:
        log = stop_server(server)
    assert "torch" not in log.lower(), log


def test_asking_for_the_torch_engine_says_what_to_install(without_torch: dict[str, str]) -> None:
    env = {**without_torch, "MODEL_DIR": str(BUNDLED_MODEL), "ENGINE": "torch"}
    server = start_server(env, wait_for="/health/live")
    try:
        ready = httpx.get(server.base_url + "/health/ready")
        assert ready.status_code == 503
        assert "pip install 'rnn-text-classifier[torch]'" in ready.json()["error"]["message"]
    finally:
        stop_server(server)


def test_the_trace_cli_runs_without_torch(without_torch: dict[str, str], tmp_path: Path) -> None:
    traced = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.trace",
            "the film is tedious",
            "--model-dir",
            str(BUNDLED_MODEL),
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **without_torch},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert traced.returncode == 0, traced.stderr
    assert "prediction negative" in traced.stdout
