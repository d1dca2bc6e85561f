"""System programs some tests need (Chromium, Prometheus)."""

import os
import shutil

import pytest


def require_system(executable: str, install_hint: str) -> str:
    """Path of a system program a test needs.

    Without it the test skips with the reason, except in CI (CI=true), where .ci/run installs
    every such program: there a missing one fails the test instead of silently skipping it.
    """
    found = shutil.which(executable)
    if found:
        return found
    message = f"{executable} is not installed ({install_hint})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; .ci/run must install it")
    pytest.skip(message)
