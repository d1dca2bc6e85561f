"""End to end: the real server (`python -m app` in a subprocess) over real HTTP."""

import asyncio
import random
import signal
import threading
import time

import httpx

from tests.conftest import BUNDLED_MODEL, Server, start_server, stop_server


def test_bundled_model_classifies_obvious_reviews(bundled_server: Server) -> None:
    response = httpx.post(bundled_server.base_url + "/classify", json={"texts": [
        "a wonderful , moving film with brilliant performances",
        "a dull , tedious and boring mess",
    ]})
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
            responses = await asyncio.gather(*(client.post(url, json={"texts": r}) for r in requests))
            return list(zip(requests, responses, strict=True))

    for request_texts, response in asyncio.run(fire()):
        assert response.status_code == 200
        for text, result in zip(request_texts, response.json()["results"], strict=True):
            assert result["label"] == expected[text]["label"]
            for label, p in result["probabilities"].items():
                assert abs(p - expected[text]["probabilities"][label]) < 1e-5
    metrics = httpx.get(bundled_server.base_url + "/metrics").text
    assert "rnn_classifier_batch_size_count" in metrics


def queue_depth(server: Server) -> float:
    for line in httpx.get(server.base_url + "/metrics").text.splitlines():
        if line.startswith("rnn_classifier_queue_depth "):
            return float(line.split()[1])
    raise AssertionError("no queue depth gauge")


def test_sigterm_drains_in_flight_requests() -> None:
    server = start_server({"MODEL_DIR": str(BUNDLED_MODEL), "MAX_BATCH_SIZE": "1"})
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
