"""Injected faults and overload: a failed batch fails only its own requests, a full queue answers
429, and in both cases the service goes on serving normally afterwards."""

import asyncio
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from app.batching.queue import TextQueue
from app.batching.runner import ThreadRunner
from app.engines.torch_eager import TorchEngine
from app.errors import BatchFailed
from app.version_metrics import VersionMetrics
from tests.support.clients import client_for, serving_state, wait_for, wait_ready


def test_a_failed_batch_fails_only_the_requests_in_it(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    calls = 0

    class FailingFirst:
        name, device = "failing-first", "cpu"

        def predict(self, sequences: list[list[int]]) -> np.ndarray:
            return predict(sequences)

    def predict(sequences: list[list[int]]) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 1:  # the first batch: hold it until the next requests queue, then fail
            release.wait(30)
            raise RuntimeError("injected fault")
        return np.array([[len(s), sum(s)] for s in sequences], np.float32)

    queue = TextQueue(max_batch_size=8, max_batch_tokens=1000, max_queue_texts=100)
    runner = ThreadRunner(queue, FailingFirst(), VersionMetrics("faults-test", "1"))
    runner.start()

    async def scenario() -> list[np.ndarray | BaseException]:
        failing = asyncio.ensure_future(runner.submit([[1, 2], [3]]))
        await asyncio.sleep(0)  # submitted
        await asyncio.to_thread(wait_for, lambda: len(queue) == 0)  # taken as batch 1
        later = [runner.submit([[5]]), runner.submit([[1, 2, 3], [4, 4]])]
        next_batch = [asyncio.ensure_future(call) for call in later]
        await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(failing, *next_batch, return_exceptions=True)

    with caplog.at_level(logging.ERROR, logger="app.runner"):
        failed, single, double = asyncio.run(scenario())
    runner.stop()
    assert isinstance(failed, BatchFailed)
    assert np.array_equal(single, [[1, 5]])
    assert np.array_equal(double, [[3, 6], [2, 8]])
    logged = [r for r in caplog.records if failed.error_id in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None


def fault_once(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Patch the model so that, once the returned event is set, its next forward pass fails."""
    armed = threading.Event()
    predict = TorchEngine.predict

    def faulty(self: TorchEngine, sequences: list[list[int]]) -> np.ndarray:
        if armed.is_set():
            armed.clear()
            raise RuntimeError("injected fault")
        return predict(self, sequences)

    monkeypatch.setattr(TorchEngine, "predict", faulty)
    return armed


def test_api_answers_a_failed_batch_with_500_and_an_error_id_in_the_log(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    armed = fault_once(monkeypatch)
    with client_for(tiny_model_dir, engine="torch") as client:  # the engine fault_once patched
        wait_ready(client)
        before = client.post("/classify", json={"texts": ["funny"]}).json()
        armed.set()
        with caplog.at_level(logging.ERROR, logger="app.runner"):
            failed = client.post("/classify", json={"texts": ["funny"]})
        after = client.post("/classify", json={"texts": ["funny"]})
    assert failed.status_code == 500
    error = failed.json()["error"]
    assert error["type"] == "internal" and "injected" not in failed.text
    error_id = re.fullmatch(r"inference failed \(error id (\S+)\)", error["message"])
    assert error_id is not None
    logged = [r for r in caplog.records if error_id[1] in r.getMessage()]
    assert len(logged) == 1 and "injected fault" in str(logged[0].exc_info)
    assert after.status_code == 200 and after.json() == before


def test_full_queue_answers_429_then_service_resumes(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    release.set()  # warm-up runs freely
    predict = TorchEngine.predict

    def slow(self: TorchEngine, sequences: list[list[int]]) -> np.ndarray:
        entered.set()
        release.wait(30)
        return predict(self, sequences)

    monkeypatch.setattr(TorchEngine, "predict", slow)
    body = {"texts": ["funny"]}
    # Forward passes on their own thread (as with 2+ CPUs), so a held one leaves the loop free;
    # the torch engine, as patched above.
    settings = {
        "max_queue_texts": 4,
        "max_batch_size": 1,
        "inference_thread": "on",
        "engine": "torch",
    }
    with client_for(tiny_model_dir, **settings) as client:
        wait_ready(client)
        queue = serving_state(client).registry.resolve().runner.queue
        release.clear()
        entered.clear()
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(client.post, "/classify", json=body)
            entered.wait(30)  # its text is in the model, the queue is empty again
            queued = pool.submit(client.post, "/classify", json={"texts": ["funny"] * 4})
            wait_for(lambda: len(queue) == 4)
            burst = [client.post("/classify", json=body) for _ in range(3)]
            release.set()
            assert running.result().status_code == 200
            assert queued.result().status_code == 200
        after = [client.post("/classify", json=body) for _ in range(5)]
    for response in burst:
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["type"] == "overloaded"
    assert [r.status_code for r in after] == [200] * 5
