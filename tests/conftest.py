"""Fixtures every test folder may use; helpers are in tests/support."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.artifacts import BUNDLED_MODEL, make_artifacts
from tests.support.servers import Server, start_server, stop_server

# Folders whose tests start processes, browsers or training runs: `pytest -m "not slow"` leaves
# them out. unit/ and api/ (the app in-process) are the fast loop.
SLOW_FOLDERS = ("e2e", "grpc", "browser", "deploy", "training", "spark")

# The app created in this process (the api/ tests) serves no gRPC: its generated messages would
# share protobuf's one descriptor pool with tritonclient.grpc's, which define the same symbols.
# Servers in subprocesses (tests/support/servers.py) get a gRPC port each.
os.environ["GRPC_PORT"] = "0"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(tests).parts[0]
        if folder in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def tiny_model_dir(tmp_path: Path) -> Path:
    return make_artifacts(tmp_path / "model")


@pytest.fixture(scope="session")
def bundled_server() -> Iterator[Server]:
    server = start_server({"MODEL_DIR": str(BUNDLED_MODEL)})
    yield server
    stop_server(server)
