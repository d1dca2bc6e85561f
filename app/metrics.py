"""Prometheus metrics, one `rnn_classifier_` prefix, base units, `_total` counters.

With several workers (PROMETHEUS_MULTIPROC_DIR set before import), every process writes its own
files and /metrics sums them, so a scrape sees the whole service, not one worker.
"""

import os
from functools import cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

REQUEST_LATENCY = Histogram(
    "rnn_classifier_request_duration_seconds",
    "Time from request received to response sent, every response, by route and status class",
    ["path", "status"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "rnn_classifier_requests_in_flight",
    "HTTP requests received and not yet answered",
    multiprocess_mode="livesum",
)
READY = Gauge(
    "rnn_classifier_ready",
    "1 when the model is loaded and the service takes traffic, 0 otherwise",
    multiprocess_mode="livemin",
)
INFERENCE_LATENCY = Histogram(
    "rnn_classifier_inference_duration_seconds",
    "Time of one batched forward pass",
    buckets=LATENCY_BUCKETS,
)
QUEUE_LATENCY = Histogram(
    "rnn_classifier_queue_duration_seconds",
    "Time a text waits in the queue before its forward pass",
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram("rnn_classifier_batch_size", "Texts per forward pass", buckets=BATCH_BUCKETS)
QUEUE_DEPTH = Gauge(
    "rnn_classifier_queue_depth", "Texts waiting for the model", multiprocess_mode="livesum"
)
PREDICTIONS = Counter(
    "rnn_classifier_predictions_total", "Predictions by predicted label", ["label"]
)
ABANDONED_TEXTS = Counter(
    "rnn_classifier_abandoned_texts_total",
    "Texts dropped before the model because their client had gone away",
)
TRUNCATED = Counter("rnn_classifier_truncated_texts_total", "Texts cut to the model's max length")
EXPLAIN_LATENCY = Histogram(
    "rnn_classifier_explain_duration_seconds",
    "Time to compute one /explain request's explanations (layers and attributions)",
    buckets=LATENCY_BUCKETS,
)
EXPLAIN_IN_FLIGHT = Gauge(
    "rnn_classifier_explains_in_flight",
    "/explain requests being computed (at most MAX_CONCURRENT_EXPLAIN per worker)",
    multiprocess_mode="livesum",
)
ERRORS = Counter("rnn_classifier_errors_total", "Error responses by error type", ["type"])
TOKENS = Counter(
    "rnn_classifier_tokens_total",
    "Word ids of the texts the model ran (no padding), every forward pass, /explain's included",
)
PADDED_TOKENS = Counter(
    "rnn_classifier_padded_tokens_total",
    "Time steps the recurrent layer ran over every row of every forward pass, padding included "
    "(divided by tokens_total: the work padding adds)",
)


def count_tokens(real: int, padded: int) -> None:
    TOKENS.inc(real)
    PADDED_TOKENS.inc(padded)


@cache
def predictions(label: str) -> Counter:
    """The per-label child, looked up once: `labels()` takes a lock and hashes on every call."""
    return PREDICTIONS.labels(label=label)


@cache
def request_latency(path: str, status_class: str) -> Histogram:
    return REQUEST_LATENCY.labels(path=path, status=status_class)


def render() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def mark_process_dead() -> None:
    """Drop this process's live gauges from the shared files (a no-op with one process)."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
