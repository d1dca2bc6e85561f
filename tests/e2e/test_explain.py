"""A busy /explain gets its own 429 on a real server while /classify is still served."""

import threading
import time
from pathlib import Path

import httpx

from tests.support.artifacts import BUNDLED_MODEL
from tests.support.servers import start_server, stop_server


def test_a_busy_explain_gets_its_own_429_and_classify_is_still_served(tmp_path: Path) -> None:
    long_texts = ["a gripping , beautifully acted film " * 8] * 64  # 64 texts x 40 tokens
    server = start_server(
        {
            "MODEL_DIR": str(BUNDLED_MODEL),
            "MAX_EXPLAIN_TEXTS": "64",
            "MAX_CONCURRENT_EXPLAIN": "1",
            "LOG_LEVEL": "warning",
        }
    )
    base = server.base_url
    first: dict[str, int] = {}

    def slow_explain() -> None:
        response = httpx.post(base + "/explain", json={"texts": long_texts}, timeout=120)
        first["status"] = response.status_code

    def in_flight() -> float:
        for line in httpx.get(base + "/metrics").text.splitlines():
            if line.startswith("rnn_classifier_explains_in_flight "):
                return float(line.split()[1])
        raise AssertionError("no in-flight gauge")

    try:
        worker = threading.Thread(target=slow_explain)
        worker.start()
        deadline = time.monotonic() + 60
        while in_flight() < 1:
            assert time.monotonic() < deadline and worker.is_alive(), first
            time.sleep(0.01)
        second = httpx.post(base + "/explain", json={"texts": ["funny"]}, timeout=30)
        classified = httpx.post(base + "/classify", json={"texts": ["funny"]}, timeout=30)
        still_explaining = in_flight() == 1
        worker.join(120)
    finally:
        log = stop_server(server)
    assert second.status_code == 429, second.text + log[-2000:]
    assert second.json()["error"]["type"] == "overloaded"
    assert "MAX_CONCURRENT_EXPLAIN" in second.json()["error"]["message"]
    assert int(second.headers["retry-after"]) >= 1
    assert classified.status_code == 200
    # /classify was answered while the explanation was still running, not after it.
    assert still_explaining
    assert first["status"] == 200
