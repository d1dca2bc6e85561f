"""One served model version's metric series, bound once (a `labels()` lookup per call would take
a lock and hash on every request) and removed together when the version goes."""

import warnings
from typing import Literal

from prometheus_client import Counter, Gauge, Histogram

from app import metrics

State = Literal["loading", "ready", "unloading"]
STATES: tuple[State, ...] = ("loading", "ready", "unloading")
Arm = Literal["live", "canary", "shadow", "named"]
ARMS: tuple[Arm, ...] = ("live", "canary", "shadow", "named")


class VersionMetrics:
    def __init__(self, model: str, version: str) -> None:
        self.labels = (model, version)
        self.inference: Histogram = metrics.INFERENCE_LATENCY.labels(*self.labels)
        self.queue_wait: Histogram = metrics.QUEUE_LATENCY.labels(*self.labels)
        self.batch_size: Histogram = metrics.BATCH_SIZE.labels(*self.labels)
        self.queue_depth: Gauge = metrics.QUEUE_DEPTH.labels(*self.labels)
        self.tokens: Counter = metrics.TOKENS.labels(*self.labels)
        self.padded_tokens: Counter = metrics.PADDED_TOKENS.labels(*self.labels)
        self.unknown_share: Histogram = metrics.UNKNOWN_SHARE.labels(*self.labels)
        self.top_probability: Histogram = metrics.TOP_PROBABILITY.labels(*self.labels)
        self._predictions: dict[str, Counter] = {}
        self._requests: dict[str, Counter] = {}
        self._arm_set = False

    def prediction(self, label: str) -> Counter:
        child = self._predictions.get(label)
        if child is None:
            child = self._predictions[label] = metrics.PREDICTIONS.labels(*self.labels, label)
        return child

    def request(self, protocol: str) -> Counter:
        child = self._requests.get(protocol)
        if child is None:
            child = self._requests[protocol] = metrics.MODEL_REQUESTS.labels(*self.labels, protocol)
        return child

    def count_tokens(self, real: int, padded: int) -> None:
        self.tokens.inc(real)
        self.padded_tokens.inc(padded)

    def set_trained_unknown_share(self, share: float) -> None:
        metrics.UNKNOWN_SHARE_TRAINED.labels(*self.labels).set(share)

    def set_state(self, state: State) -> None:
        for each in STATES:
            metrics.VERSION_STATE.labels(*self.labels, each).set(1 if each == state else 0)

    def set_arm(self, arm: Arm) -> None:
        self._arm_set = True
        for each in ARMS:
            metrics.VERSION_ARM.labels(*self.labels, each).set(1 if each == arm else 0)

    def remove(self) -> None:
        """Every series of this version, gone from /metrics. With several workers the values
        also stay in the shared files, which `metrics.render` filters instead: the removal then
        only frees this process's children, so prometheus_client's warning is not for us."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for family in metrics.PER_VERSION:
                if family is metrics.PREDICTIONS:
                    for label in self._predictions:
                        family.remove(*self.labels, label)
                elif family is metrics.MODEL_REQUESTS:
                    for protocol in self._requests:
                        family.remove(*self.labels, protocol)
                elif family is metrics.VERSION_STATE:
                    for state in STATES:
                        family.remove(*self.labels, state)
                elif family is metrics.VERSION_ARM:
                    if self._arm_set:
                        for arm in ARMS:
                            family.remove(*self.labels, arm)
                else:
                    family.remove(*self.labels)
