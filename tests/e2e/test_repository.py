"""A model repository on the real server, controlled the way Triton's users control theirs:
tritonclient for index, load, unload and rollback, swaps under load that fail no request, poll
mode on a changing directory, memory over many reloads, and several workers agreeing."""

import json
import os
import re
import shutil
import signal
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
from tritonclient.utils import InferenceServerException

from tests.support.artifacts import ROOT, make_artifacts, make_repository
from tests.support.metrics import metric_total
from tests.support.servers import Server, start_server, stop_server

ADMIN = {"Authorization": "Bearer adm1n"}
EXPLICIT = {"MODEL_CONTROL": "explicit", "ADMIN_API_KEY": "adm1n", "DEFAULT_MODEL": "alpha"}


def client_of(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))


def served_version(server: Server, **body: str) -> str:
    response = httpx.post(server.base_url + "/classify", json={"texts": ["funny"], **body})
    assert response.status_code == 200, response.text
    return str(response.json()["model"]["version"])


def rss_mib(server: Server) -> float:
    pids = [server.process.pid, *_children(server.process.pid)]
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(p) for p in found]


@pytest.fixture
def explicit_server(tmp_path: Path) -> Iterator[Server]:
    root = make_repository(tmp_path / "repo", {"alpha": [1, 2], "beta": [1]})
    server = start_server({"MODEL_REPOSITORY": str(root), **EXPLICIT})
    yield server
    stop_server(server)


def test_index_load_unload_and_rollback_through_tritonclient(explicit_server: Server) -> None:
    client = client_of(explicit_server)
    index = client.get_model_repository_index(headers=ADMIN)
    assert {"name": "alpha", "version": "2", "state": "READY"} in index
    assert {"name": "beta", "version": "1", "state": "READY"} in index
    rollback = json.dumps({"version_policy": {"specific": {"versions": [1]}}})
    client.load_model("alpha", headers=ADMIN, config=rollback)
    assert client.get_model_metadata("alpha")["versions"] == ["1"]
    assert served_version(explicit_server) == "1"
    client.load_model("alpha", headers=ADMIN)  # back to its own policy: latest
    assert served_version(explicit_server) == "2"
    client.unload_model("beta", headers=ADMIN)
    assert not client.is_model_ready("beta")
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.get_model_metadata("beta")
    client.load_model("beta", headers=ADMIN)
    assert client.is_model_ready("beta")
    with pytest.raises(InferenceServerException, match="ADMIN_API_KEY") as refused:
        client.unload_model("beta")
    assert refused.value.status() == "401"
    with pytest.raises(InferenceServerException, match="no model 'gamma'"):
        client.load_model("gamma", headers=ADMIN)


def test_reloads_under_16_concurrent_clients_fail_no_request(explicit_server: Server) -> None:
    client = client_of(explicit_server)
    stop = threading.Event()
    statuses: list[int] = []
    versions: set[str] = set()
    lock = threading.Lock()

    def hammer() -> None:
        with httpx.Client(base_url=explicit_server.base_url) as http:
            while not stop.is_set():
                response = http.post("/classify", json={"texts": ["funny", "a dull film"]})
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        versions.add(response.json()["model"]["version"])

    with ThreadPoolExecutor(16) as pool:
        for _ in range(16):
            pool.submit(hammer)
        for cycle in range(20):
            policy = {"specific": {"versions": [1 + cycle % 2]}}
            client.load_model("alpha", headers=ADMIN, config=json.dumps({"version_policy": policy}))
            if cycle % 5 == 4:
                client.unload_model("beta", headers=ADMIN)
                client.load_model("beta", headers=ADMIN)
        stop.set()
    assert len(statuses) > 200
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert versions == {"1", "2"}


def test_a_slow_request_started_before_an_unload_is_answered(tmp_path: Path) -> None:
    root = make_repository(tmp_path / "repo", {"alpha": [1], "beta": [1]})
    # One text per forward pass: 8,192 texts take seconds, the window the unload must start in.
    texts = 8192
    env = {
        **EXPLICIT,
        "MAX_BATCH_SIZE": "1",
        "MAX_TEXTS_PER_REQUEST": str(texts),
        "MAX_QUEUE_TEXTS": str(texts),
        "MAX_QUEUE_MS": "0",
    }
    server = start_server({"MODEL_REPOSITORY": str(root), **env})
    answered: list[httpx.Response] = []

    def slow_request() -> None:
        body = {"texts": ["a fine film " * 8] * texts, "model": "beta"}
        answered.append(httpx.post(server.base_url + "/classify", json=body, timeout=120))

    try:
        worker = threading.Thread(target=slow_request)
        worker.start()
        _wait(lambda: answered or _metric(server, "rnn_classifier_queue_depth") > 100)
        assert not answered, "the request was answered before the unload could start"
        # Started while thousands of the request's texts still wait in the queue: the unload
        # must let them all be classified by the version it unloads. (When the client thread
        # reads the answer, after or before the unload's own reply, is not the server's to say.)
        client_of(server).unload_model("beta", headers=ADMIN)
        worker.join(120)
        (response,) = answered
        assert response.status_code == 200, response.text
        assert len(response.json()["results"]) == texts
        gone = httpx.post(server.base_url + "/classify", json={"texts": ["x"], "model": "beta"})
        assert gone.status_code == 404
    finally:
        stop_server(server)


def _metric(server: Server, name: str) -> float:
    return metric_total(server.base_url, name)


def test_concurrent_loads_and_unloads_of_one_model_leave_it_consistent(
    explicit_server: Server,
) -> None:
    def flip(i: int) -> str:
        client = client_of(explicit_server)  # one per thread: tritonclient's is not thread-safe
        try:
            if i % 2:
                client.unload_model("beta", headers=ADMIN)
            else:
                client.load_model("beta", headers=ADMIN)
            return "ok"
        except InferenceServerException as exc:
            return str(exc)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(flip, range(16)))
    assert outcomes == ["ok"] * 16
    client = client_of(explicit_server)
    client.load_model("beta", headers=ADMIN)
    states = [e for e in client.get_model_repository_index(headers=ADMIN) if e["name"] == "beta"]
    assert [(e["version"], e["state"]) for e in states] == [("1", "READY")]
    assert served_version(explicit_server, model="beta") == "1"


def test_poll_mode_follows_the_directory_and_never_a_half_written_version(tmp_path: Path) -> None:
    root = make_repository(tmp_path / "repo", {"alpha": [1]})
    server = start_server(
        {"MODEL_REPOSITORY": str(root), "MODEL_CONTROL": "poll", "POLL_INTERVAL_S": "0.2"}
    )
    try:
        # Staged under another name: never a version, however long it sits there.
        staging = make_artifacts(root / "alpha" / ".staging-2", seed=2, name="alpha")
        time.sleep(1)
        assert served_version(server) == "1"
        # Copied in file by file: an incomplete folder is not loaded...
        partial = root / "alpha" / "2"
        partial.mkdir()
        shutil.copy(staging / "config.json", partial)
        time.sleep(1)
        assert served_version(server) == "1"
        # ... until every file is there and verifies.
        for item in staging.iterdir():
            shutil.copy(item, partial)
        _wait(lambda: served_version(server) == "2")
        # A removed version goes; a new model comes.
        make_repository(root, {"beta": [1]})
        _wait(
            lambda: (
                httpx.post(
                    server.base_url + "/classify", json={"texts": ["x"], "model": "beta"}
                ).status_code
                == 200
            )
        )
        shutil.rmtree(root / "beta")
        _wait(
            lambda: (
                httpx.post(
                    server.base_url + "/classify", json={"texts": ["x"], "model": "beta"}
                ).status_code
                == 404
            )
        )
    finally:
        stop_server(server)


def _wait(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def test_memory_stays_bounded_over_200_load_and_unload_cycles(explicit_server: Server) -> None:
    client = client_of(explicit_server)
    rss: list[float] = []
    for cycle in range(200):
        client.unload_model("beta", headers=ADMIN)
        client.load_model("beta", headers=ADMIN)
        if cycle in (19, 199):
            rss.append(rss_mib(explicit_server))
    assert served_version(explicit_server, model="beta") == "1"
    assert rss[1] - rss[0] < 15, rss  # MiB over 180 more cycles


def test_two_workers_follow_a_load_before_it_returns(tmp_path: Path) -> None:
    root = make_repository(tmp_path / "repo", {"alpha": [1, 2]})
    server = start_server({"MODEL_REPOSITORY": str(root), **EXPLICIT, "WORKERS": "2"})
    try:
        rollback = json.dumps({"version_policy": {"specific": {"versions": [1]}}})
        client_of(server).load_model("alpha", headers=ADMIN, config=rollback)
        # Each request on a new connection: the kernel spreads them over both workers.
        assert {served_version(server) for _ in range(40)} == {"1"}
        client_of(server).load_model("alpha", headers=ADMIN)
        assert {served_version(server) for _ in range(40)} == {"2"}
        # Summed over both workers' files, the metrics show no series of the unloaded version.
        exposed = httpx.get(server.base_url + "/metrics").text
        assert 'version="2"' in exposed and 'version="1"' not in exposed
    finally:
        stop_server(server)


def test_a_worker_restarted_after_a_crash_serves_what_the_calls_chose(tmp_path: Path) -> None:
    root = make_repository(tmp_path / "repo", {"alpha": [1, 2]})
    server = start_server({"MODEL_REPOSITORY": str(root), **EXPLICIT, "WORKERS": "2"})
    try:
        _wait(lambda: len(_worker_pids(server)) == 2)
        rollback = json.dumps({"version_policy": {"specific": {"versions": [1]}}})
        client_of(server).load_model("alpha", headers=ADMIN, config=rollback)
        crashed = _worker_pids(server)[0]
        os.kill(crashed, signal.SIGKILL)
        # uvicorn starts a new worker; it must come up on version 1, not the default (latest).
        _wait(lambda: len(_worker_pids(server)) == 3)
        _wait(lambda: "ready: serving" in _printed_after_start_of(server, _worker_pids(server)[2]))
        ready = _printed_after_start_of(server, _worker_pids(server)[2]).split("ready: ")[1]
        assert ready.splitlines()[0] == "serving alpha version 1"
        assert {served_version(server) for _ in range(40)} == {"1"}
    finally:
        stop_server(server)


def _worker_pids(server: Server) -> list[int]:
    """Every worker uvicorn started, in order (a dead one included)."""
    return [int(p) for p in re.findall(r"Started server process \[(\d+)\]", server.printed())]


def _printed_after_start_of(server: Server, pid: int) -> str:
    return server.printed().split(f"Started server process [{pid}]", 1)[1]


def test_explicit_control_without_an_admin_key_refuses_to_start(tmp_path: Path) -> None:
    root = make_repository(tmp_path / "repo", {"alpha": [1]})
    started = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "MODEL_REPOSITORY": str(root), "MODEL_CONTROL": "explicit"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert started.stderr.strip().count("\n") == 0, started.stderr  # one line, no traceback
    assert "ADMIN_API_KEY" in started.stderr
