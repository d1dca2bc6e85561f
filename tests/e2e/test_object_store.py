"""A model repository in an object store, against a real S3-compatible server (moto_server in a
subprocess, tests/support/objects.py) and the real service: training publishes, a polling
server follows, half-uploaded and corrupted versions are never served, an outage is survived and
recovered from with 16 clients classifying throughout, and a restart reuses its cache."""

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import tritonclient.http as triton

from app.repository.publish import publish_version
from tests.support.artifacts import ROOT, make_artifacts
from tests.support.metrics import metric, metric_total
from tests.support.objects import (
    BUCKET,
    CREDENTIALS,
    Gateway,
    S3Server,
    s3_server,
    upload_version,
)
from tests.support.servers import Server, start_server, stop_server
from tests.support.training import TINY

REPOSITORY = f"s3://{BUCKET}/repo"
POLL = {"MODEL_CONTROL": "poll", "POLL_INTERVAL_S": "0.2"}
ADMIN = {"Authorization": "Bearer adm1n"}


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the test's own clients (and publishers) sign with, as the servers do."""
    for variable, value in CREDENTIALS.items():
        monkeypatch.setenv(variable, value)


@pytest.fixture
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


def served_version(server: Server) -> str:
    response = httpx.post(server.base_url + "/classify", json={"texts": ["funny"]})
    assert response.status_code == 200, response.text
    return str(response.json()["model"]["version"])


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def listings(server: Server) -> float:
    return metric(
        server.base_url,
        'rnn_classifier_repository_requests_total{operation="list",outcome="ok"}',
    )


def polls_pass(server: Server, count: int = 3) -> None:
    """Wait until the server has listed the store `count` more times (each a poll)."""
    before = listings(server)
    wait_for(lambda: listings(server) >= before + count)


def version_of(tmp_path: Path, version: int, name: str = "alpha") -> Path:
    return make_artifacts(tmp_path / "versions" / f"{name}-{version}", seed=version, name=name)


def test_training_publishes_the_next_version_and_a_polling_server_loads_it(
    s3: S3Server, tmp_path: Path
) -> None:
    env = s3.env(REPOSITORY)
    server = start_server(
        {**env, **POLL, "MODEL_CACHE_DIR": str(tmp_path / "cache")}, wait_for="/health/live"
    )
    try:
        ready = httpx.get(server.base_url + "/health/ready")
        assert ready.status_code == 503  # an empty bucket: nothing to serve yet
        for expected in ("1", "2"):
            subprocess.run(
                [sys.executable, "-m", "training.train", "--limit", "600", "--repository",
                 REPOSITORY, "--name", "reviews", *TINY],
                cwd=ROOT, env={**env, "PATH": "/usr/bin:/bin"}, check=True,
                capture_output=True, timeout=600,
            )  # fmt: skip
            wait_for(lambda v=expected: _answers(server, v))  # type: ignore[misc]
        keys = [o.key for o in s3.store(REPOSITORY).list("reviews/2/")]
        assert "reviews/2/config.json" in keys and "reviews/2/.claim" in keys
    finally:
        stop_server(server)


def _answers(server: Server, version: str) -> bool:
    response = httpx.post(server.base_url + "/classify", json={"texts": ["a fine film"]})
    return response.status_code == 200 and response.json()["model"]["version"] == version


def test_concurrent_publishers_never_take_the_same_version(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = version_of(tmp_path, 1)
    start = threading.Barrier(4)

    def publish(_: int) -> str:
        def write(folder: Path) -> None:
            for file in source.iterdir():
                (folder / file.name).write_bytes(file.read_bytes())

        start.wait()
        return publish_version(REPOSITORY, "alpha", write).rsplit("/", 1)[1]

    monkeypatch.setenv("S3_ENDPOINT_URL", s3.url)
    with ThreadPoolExecutor(4) as pool:
        versions = list(pool.map(publish, range(4)))
    assert sorted(versions, key=int) == ["1", "2", "3", "4"]


def test_16_clients_through_partial_uploads_a_bad_checksum_and_an_outage_get_no_error(
    s3: S3Server, tmp_path: Path
) -> None:
    store = s3.store(REPOSITORY)
    upload_version(store, version_of(tmp_path, 1), "alpha", 1)
    gateway = Gateway(s3.port)  # the service reaches the store through it only
    gateway.open()
    env = {
        **s3.env(REPOSITORY),
        **POLL,
        "S3_ENDPOINT_URL": gateway.url,
        "MODEL_CACHE_DIR": str(tmp_path / "cache"),
    }
    server = start_server(env)
    stop = threading.Event()
    statuses: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=server.base_url) as http:
            while not stop.is_set():
                statuses.append(http.post("/classify", json={"texts": ["funny"]}).status_code)
                statuses.append(http.get("/health/ready").status_code)

    try:
        with ThreadPoolExecutor(16) as pool:
            for _ in range(16):
                pool.submit(hammer)
            try:
                _through_the_store_s_changes(s3, gateway, server, tmp_path)
            finally:
                stop.set()
        assert len(statuses) > 200
        assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    finally:
        output = stop_server(server)
        gateway.close()
    assert "sha256 does not match" in output
    assert "cannot be read" in output and "reachable again" in output


def _through_the_store_s_changes(
    s3: S3Server, gateway: Gateway, server: Server, tmp_path: Path
) -> None:
    store = s3.store(REPOSITORY)
    # Version 2 uploaded file by file, config.json first: incomplete at every poll until the
    # last file is there.
    two = version_of(tmp_path, 2)
    files = sorted(two.iterdir(), key=lambda p: p.name != "config.json")
    for file in files:
        store.upload(f"alpha/2/{file.name}", file)
        polls_pass(server)
        if file != files[-1]:
            assert served_version(server) == "1"
    wait_for(lambda: served_version(server) == "2")
    # Version 3 whose weights are not the ones its config.json vouches for: refused, version 2
    # serves on.
    three = version_of(tmp_path, 3)
    (three / "model.safetensors").write_bytes((two / "model.safetensors").read_bytes())
    upload_version(store, three, "alpha", 3)
    polls_pass(server)
    assert served_version(server) == "2"
    # The store cannot be reached: the server says so and serves on.
    failures = metric_total(server.base_url, "repository_failures")
    gateway.close()
    wait_for(lambda: metric(server.base_url, "rnn_classifier_repository_up") == 0)
    assert metric_total(server.base_url, "repository_failures") > failures
    assert served_version(server) == "2"
    assert httpx.get(server.base_url + "/health/ready").status_code == 200
    # A version published meanwhile is served once the store can be reached again.
    upload_version(store, version_of(tmp_path, 4), "alpha", 4)
    polls_pass_while_down = metric_total(server.base_url, "repository_failures")
    wait_for(lambda: metric_total(server.base_url, "repository_failures") > polls_pass_while_down)
    assert served_version(server) == "2"
    gateway.open()
    wait_for(lambda: served_version(server) == "4")
    assert metric(server.base_url, "rnn_classifier_repository_up") == 1


def test_a_restart_reuses_the_cache_and_starts_on_it_while_the_store_is_down(
    s3: S3Server, tmp_path: Path
) -> None:
    upload_version(s3.store(REPOSITORY), version_of(tmp_path, 1), "alpha", 1)
    env = {**s3.env(REPOSITORY), "MODEL_CACHE_DIR": str(tmp_path / "cache")}
    stop_server(start_server(env))
    downloads = s3.requests("GET /models/repo/alpha/1/")
    assert downloads >= 3  # config.json, the weights, the vocabulary, the known answers
    server = start_server(env)  # warm: listed, nothing downloaded again
    try:
        assert served_version(server) == "1"
        assert s3.requests("GET /models/repo/alpha/1/") == downloads
        assert metric_total(server.base_url, "rnn_classifier_repository_requests_total") == 1
    finally:
        stop_server(server)
    s3.stop()
    server = start_server(env)  # the store down, the cache warm: serves what the cache holds
    try:
        assert served_version(server) == "1"
        assert metric(server.base_url, "rnn_classifier_repository_up") == 0
    finally:
        stop_server(server)


def test_a_start_with_the_store_down_and_no_cache_is_not_ready_and_says_why(
    tmp_path: Path,
) -> None:
    down = S3Server()  # a port nothing listens on
    env = {**down.env(REPOSITORY), **POLL, "MODEL_CACHE_DIR": str(tmp_path / "cache")}
    server = start_server(env, wait_for="/health/live")
    try:
        ready = httpx.get(server.base_url + "/health/ready")
        assert ready.status_code == 503
        assert f"MODEL_REPOSITORY {REPOSITORY} cannot be read" in ready.text
        # Once the store answers, the next poll serves its model.
        down.start()
        down.create_bucket()
        upload_version(down.store(REPOSITORY), version_of(tmp_path, 1), "alpha", 1)
        wait_for(lambda: httpx.get(server.base_url + "/health/ready").status_code == 200)
        assert served_version(server) == "1"
    finally:
        stop_server(server)
        down.stop()


def test_explicit_load_and_unload_on_a_bucket_through_tritonclient(
    s3: S3Server, tmp_path: Path
) -> None:
    store = s3.store(REPOSITORY)
    upload_version(store, version_of(tmp_path, 1), "alpha", 1)
    env = {
        **s3.env(REPOSITORY),
        "MODEL_CONTROL": "explicit",
        "ADMIN_API_KEY": "adm1n",
        "MODEL_CACHE_DIR": str(tmp_path / "cache"),
    }
    server = start_server(env)
    client = triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))
    try:
        assert served_version(server) == "1"
        upload_version(store, version_of(tmp_path, 2), "alpha", 2)
        store.upload("alpha/3/config.json", version_of(tmp_path, 3) / "config.json")  # half
        assert served_version(server) == "1"  # no poll: nothing changes until a load
        rollback = json.dumps({"version_policy": {"specific": {"versions": [2]}}})
        client.load_model("alpha", headers=ADMIN, config=rollback)
        assert served_version(server) == "2"
        with pytest.raises(triton.InferenceServerException, match=r"model\.safetensors"):
            client.load_model("alpha", headers=ADMIN)  # latest: the half-uploaded version 3
        assert served_version(server) == "2"
        client.unload_model("alpha", headers=ADMIN)
        assert not client.is_model_ready("alpha")
    finally:
        client.close()
        stop_server(server)


def test_the_file_command_reads_and_writes_s3_objects(s3: S3Server, tmp_path: Path) -> None:
    store = s3.store(f"s3://{BUCKET}")
    rows = "text\na gripping and beautifully acted film\ndull and lifeless and far too long\n"
    store.upload("in/reviews.csv", rows.encode())
    command = [
        sys.executable, "-m", "app.bulk", f"s3://{BUCKET}/in/reviews.csv",
        "-o", f"s3://{BUCKET}/out/scored.jsonl", "--model-dir", str(version_of(tmp_path, 1)),
        "--no-progress",
    ]  # fmt: skip
    env = {**CREDENTIALS, "S3_ENDPOINT_URL": s3.url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    scored = [json.loads(line) for line in store.read("out/scored.jsonl").splitlines()]
    assert [row["text"] for row in scored] == rows.splitlines()[1:]
    assert all(row["label"] in ("neg", "pos") for row in scored)
    missing = subprocess.run(
        [*command[:3], f"s3://{BUCKET}/in/none.csv", *command[4:]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "in/none.csv" in missing.stderr and "Traceback" not in missing.stderr
