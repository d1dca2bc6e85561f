"""Shutting down in-process: readiness fails at once while requests that still arrive are served."""

from pathlib import Path

from tests.support.clients import client_for, serving_state, wait_ready


def test_shutting_down_fails_readiness_but_serves_what_still_arrives(tiny_model_dir: Path) -> None:
    with client_for(tiny_model_dir) as client:
        wait_ready(client)
        serving_state(client).begin_shutdown()
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["error"] == {"type": "not_ready", "message": "shutting down"}
        assert client.post("/classify", json={"texts": ["funny"]}).status_code == 200
