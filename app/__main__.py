"""`python -m app`: serve the model with the settings from the environment."""

import os
import tempfile

import uvicorn

from app.logs import log_config
from app.settings import get_settings


def main() -> None:
    settings = get_settings()
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Set before any worker imports prometheus_client, so all of them write shared files.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="rnn-classifier-metrics-")
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=log_config(settings.log_format, settings.log_level),
        # app.middleware logs one line per request, with its request id, instead.
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


if __name__ == "__main__":
    main()
