"""Reading metrics from a Prometheus exposition: the helpers every test uses.

A series that is not there fails the test, so a renamed metric never reads as 0.
"""

import httpx
from fastapi.testclient import TestClient

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
