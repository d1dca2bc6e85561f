"""LOG_FORMAT=json from a real server: every line is one JSON object a log pipeline can read."""

import json
from pathlib import Path

import httpx

from tests.support.servers import start_server, stop_server


def test_json_logs_of_two_workers_and_uvicorn_parse_line_by_line(tiny_model_dir: Path) -> None:
    """Two workers: the log setup must reach the worker processes, not only the supervisor."""
    server = start_server({"MODEL_DIR": str(tiny_model_dir), "LOG_FORMAT": "json", "WORKERS": "2"})
    try:
        with httpx.Client(base_url=server.base_url) as client:
            ok = client.post(
                "/classify", json={"texts": ["funny"]}, headers={"X-Request-ID": "log-test-1"}
            )
            missing = client.get("/nowhere", headers={"X-Request-ID": "log-test-2"})
        assert (ok.status_code, missing.status_code) == (200, 404)
    finally:
        output = stop_server(server)

    lines = output.splitlines()
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all(isinstance(e, dict) for e in entries), output
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    loggers = {e["logger"] for e in entries}
    assert "uvicorn.error" in loggers, output  # uvicorn's own lines: started, shutting down
    assert sum(e["message"].startswith("ready:") for e in entries) == 2, output  # both workers
    access = {e["request_id"]: e for e in entries if e["logger"] == "app.access"}
    assert access["log-test-1"]["method"] == "POST"
    assert access["log-test-1"]["path"] == "/classify"
    assert access["log-test-1"]["status"] == 200
    assert access["log-test-1"]["duration_ms"] >= 0
    assert access["log-test-2"]["status"] == 404
    assert access["log-test-2"]["path"] == "/nowhere"


def test_text_logs_stay_the_default(tiny_model_dir: Path) -> None:
    server = start_server({"MODEL_DIR": str(tiny_model_dir)})
    try:
        httpx.post(server.base_url + "/classify", json={"texts": ["funny"]},
                   headers={"X-Request-ID": "log-test-3"})  # fmt: skip
    finally:
        output = stop_server(server)
    assert not output.lstrip().startswith("{"), output
    assert "POST /classify 200" in output
    assert "request_id=log-test-3" in output
