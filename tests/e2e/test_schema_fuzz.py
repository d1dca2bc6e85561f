"""schemathesis against the real server's own /openapi.json: no 5xx, and every response (errors
included) has a status code, content type, headers and body that the schema declares."""

import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.artifacts import make_artifacts
from tests.support.servers import start_server, stop_server

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",  # e.g. a 405 must carry its Allow header
]


# The model's name and version in the /v2 paths, so generated requests reach the model (a random
# name is a 404 before the body is read). An infer body is valid only when its data holds as many
# texts as its shape says, which JSON Schema cannot express: most generated bodies are rightly
# refused with 400, which schemathesis would report as a schema mismatch and a low valid rate
# (its per-operation warnings setting has no effect in 4.32, so those two are off for all).
WARNINGS_BUT_VALIDITY = [
    "missing_auth", "missing_test_data", "base_url_mismatch", "missing_deserializer",
    "unused_openapi_auth", "unsupported_regex", "method_not_allowed", "constants_extraction",
    "unmatched_filter", "unresolvable_reference", "rate_limited",
    "dictionary_mismatch", "timeout_units",
]  # fmt: skip
CONFIG = f"""
warnings = {WARNINGS_BUT_VALIDITY}

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
             "--checks", ",".join(CHECKS), "--max-examples", "50", "--seed", "1",
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
