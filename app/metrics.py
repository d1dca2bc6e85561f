"""Prometheus metrics, one `rnn_classifier_` prefix, base units, `_total` counters.

With several workers (PROMETHEUS_MULTIPROC_DIR set before import), every process writes its own
files and /metrics sums them, so a scrape sees the whole service, not one worker.
"""

import os
from collections.abc import Iterable
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
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
SHARE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)

# `protocol`: rest (every HTTP route, /v2 included) or grpc. For gRPC, `path` is the RPC
# (/inference.GRPCInferenceService/ModelInfer) and `status` its status code (OK, NOT_FOUND, ...).
REQUEST_LATENCY = Histogram(
    "rnn_classifier_request_duration_seconds",
    "Time from request received to response sent, every response, by route and status class",
    ["path", "status", "protocol"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "rnn_classifier_requests_in_flight",
    "Requests (HTTP or gRPC calls) received and not yet answered",
    ["protocol"],
    multiprocess_mode="livesum",
)
REPOSITORY_UP = Gauge(
    "rnn_classifier_repository_up",
    "1 when the last look at the model repository (a listing, for a store) succeeded, 0 while it "
    "fails (what is loaded keeps serving)",
    multiprocess_mode="livemin",
)
REPOSITORY_FAILURES = Counter(
    "rnn_classifier_repository_failures_total",
    "Looks at the model repository (listings, downloads) that failed: the store unreachable or "
    "answering errors",
)
REPOSITORY_REQUESTS = Counter(
    "rnn_classifier_repository_requests_total",
    "Requests to the object store of the model repository, by operation (list, get) and outcome "
    "(ok, error)",
    ["operation", "outcome"],
)
READY = Gauge(
    "rnn_classifier_ready",
    "1 when the model is loaded and the service takes traffic, 0 otherwise",
    multiprocess_mode="livemin",
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
ERRORS = Counter(
    "rnn_classifier_errors_total", "Error responses by error type", ["type", "protocol"]
)
# Per model version: labelled by `model` and `version`, and gone from /metrics once the version is
# unloaded (app/lifecycle/version.py removes its series; with several workers, `render` leaves out
# the versions this worker does not serve, as every worker converges on the same ones).
VERSION = ["model", "version"]
INFERENCE_LATENCY = Histogram(
    "rnn_classifier_inference_duration_seconds",
    "Time of one batched forward pass",
    VERSION,
    buckets=LATENCY_BUCKETS,
)
QUEUE_LATENCY = Histogram(
    "rnn_classifier_queue_duration_seconds",
    "Time a text waits in the queue before its forward pass",
    VERSION,
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "rnn_classifier_batch_size", "Texts per forward pass", VERSION, buckets=BATCH_BUCKETS
)
QUEUE_DEPTH = Gauge(
    "rnn_classifier_queue_depth",
    "Texts waiting for the model",
    VERSION,
    multiprocess_mode="livesum",
)
MODEL_REQUESTS = Counter(
    "rnn_classifier_model_requests_total",
    "Classify requests this version answered, by protocol (rest: /classify and /v2 infer; grpc)",
    [*VERSION, "protocol"],
)
PREDICTIONS = Counter(
    "rnn_classifier_predictions_total", "Predictions by predicted label", [*VERSION, "label"]
)
TOKENS = Counter(
    "rnn_classifier_tokens_total",
    "Word ids of the texts the model ran (no padding), every forward pass, /explain's included",
    VERSION,
)
PADDED_TOKENS = Counter(
    "rnn_classifier_padded_tokens_total",
    "Time steps the recurrent layer ran over every row of every forward pass, padding included "
    "(divided by tokens_total: the work padding adds)",
    VERSION,
)
UNKNOWN_SHARE = Histogram(
    "rnn_classifier_unknown_word_share",
    "Per classified text, the share of its words the vocabulary lacks (read as <unk>)",
    VERSION,
    buckets=SHARE_BUCKETS,
)
UNKNOWN_SHARE_TRAINED = Gauge(
    "rnn_classifier_unknown_word_share_trained",
    "The mean unknown-word share per text that training measured on its validation texts",
    VERSION,
    multiprocess_mode="max",
)
TOP_PROBABILITY = Histogram(
    "rnn_classifier_top_probability",
    "Per classified text, the probability of its predicted label",
    VERSION,
    buckets=SHARE_BUCKETS,
)
VERSION_STATE = Gauge(
    "rnn_classifier_model_state",
    "1 for the state a served model version is in (loading, ready, unloading)",
    [*VERSION, "state"],
    multiprocess_mode="max",
)
VERSION_ARM = Gauge(
    "rnn_classifier_model_arm",
    "1 for the part a served model version plays: live (answers requests that name no version), "
    "canary or shadow (on trial in a rollout), named (answers only requests that name it)",
    [*VERSION, "arm"],
    multiprocess_mode="max",
)
PER_VERSION = (
    MODEL_REQUESTS,
    INFERENCE_LATENCY,
    QUEUE_LATENCY,
    BATCH_SIZE,
    QUEUE_DEPTH,
    PREDICTIONS,
    TOKENS,
    PADDED_TOKENS,
    UNKNOWN_SHARE,
    UNKNOWN_SHARE_TRAINED,
    TOP_PROBABILITY,
    VERSION_STATE,
    VERSION_ARM,
)
# Per (model, live version, shadow version) while a shadow rollout runs (app/lifecycle/shadow.py).
SHADOW_PAIR = ["model", "live", "shadow"]
SHADOW_TEXTS = Counter(
    "rnn_classifier_shadow_texts_total",
    "Texts the live version answered that the shadow version scored too (compared), or did not "
    "because it was behind (dropped)",
    [*SHADOW_PAIR, "outcome"],
)
SHADOW_AGREEMENT = Counter(
    "rnn_classifier_shadow_agreement_total",
    "Compared texts the shadow version gave the live version's label (divided by the compared "
    "texts: the label agreement)",
    SHADOW_PAIR,
)
SHADOW_DIFFERENCE = Histogram(
    "rnn_classifier_shadow_top_probability_difference",
    "Per compared text, |the live version's top probability - the shadow's probability of that "
    "label|",
    SHADOW_PAIR,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
)
SHADOW_DIFFERENCE_MAX = Gauge(
    "rnn_classifier_shadow_top_probability_difference_max",
    "The largest rnn_classifier_shadow_top_probability_difference seen",
    SHADOW_PAIR,
    multiprocess_mode="livemax",
)
LOAD_DURATION = Histogram(
    "rnn_classifier_model_load_duration_seconds",
    "Time to load, verify (known answers) and warm up a model version, refused ones included",
    ["model"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
ROLLOUT_ABORTS = Counter(
    "rnn_classifier_rollout_aborts_total",
    "Rollouts aborted by their guard (label agreement below its minimum)",
    ["model"],
)
LOAD_FAILURES = Counter(
    "rnn_classifier_model_load_failures_total",
    "Model versions refused at load (bad files, failed known answers, no room)",
    ["model"],
)


@cache
def request_latency(path: str, status: str, protocol: str = "rest") -> Histogram:
    return REQUEST_LATENCY.labels(path=path, status=status, protocol=protocol)


@cache
def in_flight(protocol: str) -> Gauge:
    return IN_FLIGHT.labels(protocol=protocol)


@cache
def errors(type_: str, protocol: str) -> Counter:
    return ERRORS.labels(type=type_, protocol=protocol)


def render(served: set[tuple[str, str]] | None = None) -> tuple[bytes, str]:
    """The exposition; with several workers, summed over their files, and per-version series
    only for the `served` (model, version) pairs."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        collector = multiprocess.MultiProcessCollector(None)  # type: ignore[no-untyped-call]
        registry.register(_Served(collector, served or set()))
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class _Served(Collector):
    """A collector's families without the per-version samples of versions no longer served."""

    def __init__(self, inner: Collector, served: set[tuple[str, str]]) -> None:
        self.inner, self.served = inner, served

    def collect(self) -> Iterable[Metric]:
        names = {family._name for family in PER_VERSION}
        for family in self.inner.collect():
            if family.name in names:
                family.samples = [
                    s
                    for s in family.samples
                    if (s.labels.get("model"), s.labels.get("version")) in self.served
                ]
            yield family


def mark_process_dead() -> None:
    """Drop this process's live gauges from the shared files (a no-op with one process)."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
