"""schemathesis against the real server's own /openapi.json, with every check: no 5xx; every
response (errors included) has a status code, content type, headers and body that the schema
declares; every request the schema allows is accepted and every one it forbids refused; methods,
required headers and auth as declared."""

import subprocess
import sys
from pathlib import Path

import httpx
from schemathesis.core.warnings import SchemathesisWarning

from tests.support.artifacts import make_artifacts
from tests.support.servers import start_server, stop_server

CHECKS = "all"  # positive_data_acceptance, negative_data_rejection, ignored_auth... too
# Every warning shown, and any one fails the run: a low share of accepted valid requests included
# (the infer bodies' one rule JSON Schema cannot state is met by schemathesis_hooks.py).
WARNINGS = [warning.value for warning in SchemathesisWarning]
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
# The model's name and version in the /v2 paths, so generated requests reach the model (a random
# name is a 404 before the body is read).
CONFIG = f"""
hooks = "{HOOKS}"

[warnings]
display = {WARNINGS}
fail-on = true

[parameters]
"path.name" = "tiny"
"path.version" = "test"
"""


def test_service_conforms_to_its_own_openapi_schema(tmp_path: Path) -> None:
    # The small model keeps each call fast; the HTTP surface is the same as the bundled model's.
    model_dir = make_artifacts(tmp_path / "model")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    server = start_server({"MODEL_DIR": str(model_dir), "LOG_LEVEL": "warning"})
    try:
        schema = httpx.get(server.base_url + "/openapi.json").json()
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
             server.base_url + "/openapi.json",
             "--checks", CHECKS, "--max-examples", "50", "--seed", "1",
             "--request-timeout", "10"],
            cwd=tmp_path,  # its hypothesis database stays out of the repository
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
    finally:
        log = stop_server(server)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:] + log[-2000:]
    assert "No issues found" in run.stdout
    # schemathesis skips bodies whose content type the schema leaves open; /metrics' is declared.
    metrics = schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
