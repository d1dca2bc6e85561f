"""`python -m app`: serve the model with the settings from the environment."""

import os
import shutil
import tempfile
from pathlib import Path

import uvicorn
from pydantic import ValidationError
from uvicorn.supervisors import Multiprocess

from app.logs import log_config
from app.settings import CONTROL_DIR_ENV, Settings, get_settings


def _shared_metrics_dir() -> Path | None:
    """Give the workers one directory for their metric files, empty at start.

    Returns the directory if this call created it (so it is removed at exit). Set before any
    worker imports prometheus_client, so all of them write there; files left by an earlier run
    would otherwise be summed into this run's counters.
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        for stale in Path(configured).glob("*.db"):
            stale.unlink()
        return None
    created = Path(tempfile.mkdtemp(prefix="rnn-classifier-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(created)
    return created


def _shared_dir(variable: str, prefix: str) -> Path:
    """A new directory for every worker to share, named in `variable` for them."""
    created = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ[variable] = str(created)
    return created


def serve(config: uvicorn.Config) -> None:
    """uvicorn.run's single- and multi-worker paths, for a Config built here."""
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:  # e.g. the port is taken: fail as uvicorn.run does
        raise SystemExit(3)


def _settings() -> Settings:
    """The settings, or exit with pydantic's one-line reasons (not a traceback)."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise SystemExit(f"refusing to start: {problems}") from None


def main() -> None:
    settings = _settings()
    created = []
    if settings.workers > 1:
        created = [
            _shared_metrics_dir(),
            # Explicit model control: where the workers agree on what they serve.
            _shared_dir(CONTROL_DIR_ENV, "rnn-classifier-control-"),
        ]
    config = uvicorn.Config(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=log_config(settings.log_format, settings.log_level),
        # app/http/middleware.py logs one line per request, with its request id, instead.
        access_log=False,
        # Nothing reads the client address, which the proxy-headers layer rewrites per request.
        proxy_headers=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )
    try:
        serve(config)
    finally:
        for directory in created:
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
