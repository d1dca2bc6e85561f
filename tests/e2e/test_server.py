"""End to end: the real server (`python -m app` in a subprocess) over real HTTP."""

import asyncio
import json
import random
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.artifacts import BUNDLED_MODEL
from tests.support.metrics import metric_total, predictions_by_worker
from tests.support.servers import Server, start_server, stop_server

# These tests fill the queue on purpose and need it to stay full for a while: one text per
# forward pass, on the slower reference engine (torch), and no time bound on admission.
QUEUES_ALL = {
    "MODEL_DIR": str(BUNDLED_MODEL),
    "MAX_BATCH_SIZE": "1",
    "ENGINE": "torch",
    "MAX_QUEUE_MS": "0",
}


def test_bundled_model_classifies_obvious_reviews(bundled_server: Server) -> None:
    response = httpx.post(
        bundled_server.base_url + "/classify",
        json={
            "texts": [
                "a wonderful , moving film with brilliant performances",
                "a dull , tedious and boring mess",
            ]
        },
    )
    assert response.status_code == 200
    labels = [r["label"] for r in response.json()["results"]]
    assert labels == ["positive", "negative"]
    info = httpx.get(bundled_server.base_url + "/model").json()
    assert info["metrics"]["test_accuracy"] >= 0.77


def test_concurrent_requests_match_single_request_answers(bundled_server: Server) -> None:
    """A few hundred concurrent requests, batched together by the server, each get their own answer."""
    rng = random.Random(7)
    words = "great awful plot acting boring brilliant film story slow funny dull moving the a of".split()
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 60))) for _ in range(60)]
    url = bundled_server.base_url + "/classify"
    with httpx.Client() as client:
        expected = {t: client.post(url, json={"texts": [t]}).json()["results"][0] for t in texts}

    async def fire() -> list[tuple[list[str], httpx.Response]]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            requests = [rng.sample(texts, rng.choice([1, 1, 1, 3, 8])) for _ in range(300)]
            responses = await asyncio.gather(
                *(client.post(url, json={"texts": r}) for r in requests)
            )
            return list(zip(requests, responses, strict=True))

    for request_texts, response in asyncio.run(fire()):
        assert response.status_code == 200
        for text, result in zip(request_texts, response.json()["results"], strict=True):
            assert result["label"] == expected[text]["label"]
            for label, p in result["probabilities"].items():
                assert abs(p - expected[text]["probabilities"][label]) < 1e-5
    metrics = httpx.get(bundled_server.base_url + "/metrics").text
    assert "rnn_classifier_batch_size_count" in metrics


def metric(server: Server, name: str) -> float:
    """All series of the metric summed (the per-version ones carry model and version labels)."""
    return metric_total(server.base_url, name)


def queue_depth(server: Server) -> float:
    return metric(server, "rnn_classifier_queue_depth")


def raw_request(body: bytes, framing: str) -> bytes:
    head = b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if framing == "content-length":
        return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    return head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_requests_of_clients_that_went_away_are_dropped_before_the_model(framing: str) -> None:
    server = start_server(QUEUES_ALL)
    try:
        url = server.base_url + "/classify"
        busy = threading.Thread(
            target=httpx.post, args=(url,), kwargs={"json": {"texts": ["slow film " * 20] * 256},
                                                    "timeout": 120})  # fmt: skip
        busy.start()
        while queue_depth(server) < 128:  # the model has plenty queued ahead of the next request
            time.sleep(0.01)
        body = json.dumps({"texts": ["gone before its turn"] * 50}).encode()
        port = int(server.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(raw_request(body, framing))
            while queue_depth(server) < 50:
                time.sleep(0.001)
        busy.join(120)
        assert metric(server, "rnn_classifier_abandoned_texts_total") == 50
        assert metric(server, "rnn_classifier_batch_size_count") == 256  # one pass per busy text
    finally:
        stop_server(server)


def test_sigterm_drains_in_flight_requests() -> None:
    server = start_server(QUEUES_ALL)
    url = server.base_url + "/classify"
    results: list[int] = []

    def call() -> None:
        try:
            response = httpx.post(url, json={"texts": ["a fine film " * 20] * 128}, timeout=60)
            results.append(response.status_code)
        except httpx.TransportError as exc:
            results.append(type(exc).__name__)  # type: ignore[arg-type]

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    # Wait until all 8 requests are queued (8 x 128 texts, one text per forward pass).
    deadline = time.monotonic() + 30
    while queue_depth(server) < 7 * 128 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(30)
    log = stop_server(server)
    assert results == [200] * 8, log
    assert server.process.returncode in (0, -signal.SIGTERM), log
    # Readiness failed on the signal itself, before uvicorn closed its sockets and drained.
    # (Not probed over HTTP: from then on uvicorn closes idle connections and refuses new ones.)
    assert log.index("not ready: shutting down") < log.index("Shutting down"), log


def test_sigterm_exits_after_shutdown_timeout_with_a_json_503() -> None:
    """Work that cannot finish within SHUTDOWN_TIMEOUT_S is cut off, and its callers are told."""
    server = start_server(
        {
            **QUEUES_ALL,
            "SHUTDOWN_TIMEOUT_S": "1",
            "MAX_TEXTS_PER_REQUEST": "4096",
            "MAX_QUEUE_TEXTS": "100000",
        }
    )
    url = server.base_url + "/classify"
    responses: list[httpx.Response] = []

    def call() -> None:  # 4096 texts one per forward pass: far longer than the 1 s allowed
        responses.append(httpx.post(url, json={"texts": ["a fine film " * 20] * 4096}, timeout=120))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while queue_depth(server) < 4096 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(25)  # the default timeout (30 s) would still be waiting here
    finally:
        log = stop_server(server)
    for thread in threads:
        thread.join(30)
    assert "timeout graceful shutdown exceeded" in log
    assert server.process.returncode in (0, -signal.SIGTERM), log
    assert [r.status_code for r in responses] == [503, 503], log
    for response in responses:
        assert response.json()["error"]["type"] == "not_ready"


def test_two_workers_report_metrics_summed_across_processes(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"stale file of an earlier run")
    server = start_server({"MODEL_DIR": str(BUNDLED_MODEL), "WORKERS": "2",
                           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})  # fmt: skip
    sent = 0

    async def burst() -> None:  # new connections at once, so the kernel hands them to both
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            answers = await asyncio.gather(
                *(client.post("/classify", json={"texts": ["fine", "awful"]},
                              headers={"Connection": "close"}) for _ in range(16))
            )  # fmt: skip
        assert all(a.status_code == 200 for a in answers)

    try:
        for _ in range(20):
            asyncio.run(burst())
            sent += 16 * 2
            if sum(count > 0 for count in predictions_by_worker(metrics_dir).values()) >= 2:
                break
        by_worker = predictions_by_worker(metrics_dir)
        served = [count for count in by_worker.values() if count > 0]
        assert len(served) == 2, by_worker  # both processes answered requests
        assert sum(served) == sent  # the stale file was wiped at start, not summed
        scraped = sum(
            float(line.split()[1])
            for line in httpx.get(server.base_url + "/metrics").text.splitlines()
            if line.startswith("rnn_classifier_predictions_total{")
        )
        assert scraped == sent  # whichever worker answers the scrape sums both
    finally:
        stop_server(server)


def test_liveness_stays_responsive_while_large_requests_are_tokenized() -> None:
    """Two requests of 1000 texts of 20k characters each must not stall the loop.

    The limits are raised past their defaults so that tokenizing one request takes seconds:
    on the loop a probe would wait for about that long, while off the loop it waits only for
    its turn at the GIL and the cores, which does not grow with the request.
    """
    texts_per_request = 1000
    server = start_server(
        {
            "MODEL_DIR": str(BUNDLED_MODEL),
            "MAX_QUEUE_MS": "0",
            "MAX_TEXTS_PER_REQUEST": str(texts_per_request),
            "MAX_BODY_BYTES": str(64 * 1024 * 1024),
        }
    )
    rng = random.Random(3)
    words = "a fine film , but the plot is slow and the acting dull !".split()
    big = [" ".join(rng.choices(words, k=6000))[:20_000] for _ in range(texts_per_request)]
    durations: list[float] = []
    probes: list[float] = []

    def post_big() -> None:
        started = time.perf_counter()
        response = httpx.post(server.base_url + "/classify", json={"texts": big}, timeout=300)
        assert response.status_code == 200
        durations.append(time.perf_counter() - started)

    try:
        threads = [threading.Thread(target=post_big) for _ in range(2)]
        for thread in threads:
            thread.start()
        with httpx.Client(base_url=server.base_url) as client:
            while any(thread.is_alive() for thread in threads):
                started = time.perf_counter()
                assert client.get("/health/live").status_code == 200
                probes.append(time.perf_counter() - started)
        for thread in threads:
            thread.join()
    finally:
        stop_server(server)
    assert len(durations) == 2 and len(probes) > 1
    # Measured side by side, not against a fixed time: on the loop the slowest probe would
    # wait for a whole request's tokenizing, most of the faster request's own duration.
    assert max(probes) < 0.25 * min(durations), (max(probes), sorted(durations))
