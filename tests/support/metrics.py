"""Reading metrics from a Prometheus exposition: the helpers every test uses.

A series that is not there fails the test, so a renamed metric never reads as 0.
"""

import shutil
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

Source = TestClient | str  # an in-process client, or a running server's base URL


def exposition(source: Source) -> str:
    if isinstance(source, str):
        return httpx.get(source + "/metrics").text
    return source.get("/metrics").text


def metric(source: Source, series: str) -> float:
    """The value of one series, named with its labels as exposed, e.g.
    'rnn_classifier_predictions_total{label="pos"}'."""
    for line in exposition(source).splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no series {series} in the metrics")


def metric_total(source: Source, name: str) -> float:
    """The sum of every series of a metric, e.g. predictions over all labels; `name` may leave
    out the service's prefix and a counter's _total suffix ("predictions")."""
    if not name.startswith("rnn_classifier_"):
        name = f"rnn_classifier_{name}_total"
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in exposition(source).splitlines()
        if line.startswith((name + "{", name + " "))
    ]
    assert values, f"no series of {name} in the metrics"
    return sum(values)


def predictions_by_worker(directory: Path) -> dict[str, float]:
    """Texts each worker process predicted, read from its own multiprocess file alone."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        alone = directory / f"alone-{path.stem}"
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts[path.stem.split("_")[-1]] = sum(
            sample.value
            for family in registry.collect()
            if family.name == "rnn_classifier_predictions"
            for sample in family.samples
            if sample.name.endswith("_total")
        )
    return counts
