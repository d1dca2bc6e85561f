"""deploy/monitoring against real components: promtool on the config and rules, and a real
Prometheus scraping the real service, asked through its HTTP API."""

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from tests.support.artifacts import ROOT, make_artifacts
from tests.support.servers import Server, free_port, start_server, stop_server
from tests.support.system import require_system

MONITORING = ROOT / "deploy" / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus" / "prometheus.yml"
RULES = MONITORING / "prometheus" / "rules.yml"
RULE_TESTS = MONITORING / "prometheus" / "rules.test.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "rnn-classifier.json"
DATASOURCES = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = MONITORING / "grafana" / "provisioning" / "dashboards" / "rnn-classifier.yml"
ADAPTER_VALUES = MONITORING / "prometheus-adapter-values.yaml"
INSTALL_HINT = "apt-get install prometheus"
# Grafana's interval variable, for a Prometheus that scrapes every second.
RATE_INTERVAL = "30s"


def rule_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {
        rule.get("record") or rule["alert"]: rule["expr"] for g in groups for rule in g["rules"]
    }


def recording_rules() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["record"] for g in groups for rule in g["rules"] if "record" in rule}


def dashboard_targets() -> list[dict[str, Any]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [{**target, "panel": panel["title"]} for panel in panels for target in panel["targets"]]


def test_promtool_accepts_config_and_rules_and_the_rule_unit_tests_pass() -> None:
    promtool = require_system("promtool", INSTALL_HINT)
    for args in (
        ["check", "config", str(PROMETHEUS_CONFIG)],  # and the rule files it lists
        ["check", "rules", str(RULES)],
        ["test", "rules", str(RULE_TESTS)],
    ):
        result = subprocess.run([promtool, *args], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_matches_the_compose_mounts_and_the_datasource() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mounts = {}
    for service in ("prometheus", "grafana"):
        assert compose[service]["profiles"] == ["monitoring"]
        for volume in compose[service]["volumes"]:
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                assert (ROOT / source).exists(), volume
                mounts[target] = ROOT / source
    # The files Prometheus and Grafana are told to read lie where compose mounts them.
    assert mounts["/etc/prometheus"] / "prometheus.yml" == PROMETHEUS_CONFIG
    (provider,) = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    assert mounts[provider["options"]["path"]] == DASHBOARD.parent
    assert mounts["/etc/grafana/provisioning"] == DATASOURCES.parent.parent
    (scrape,) = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    ((target,),) = [c["targets"] for c in scrape["static_configs"]]
    assert target.split(":")[0] in compose

    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids) > 0, panel["title"]


@dataclass
class Scraped:
    api: str  # Prometheus' HTTP API
    server: Server
    texts_sent: int

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(self.api + "/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, want: float) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result and float(result[0]["value"][1]) == want:
                return
            time.sleep(0.5)
        raise AssertionError(f"{expr} never reached {want}: {self.query(expr)}")


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    """The service with traffic behind it, scraped every second by a real Prometheus that loads
    the committed config (interval and target changed) and rules."""
    prometheus = require_system("prometheus", INSTALL_HINT)
    workdir = tmp_path_factory.mktemp("prometheus")
    # A repository whose version 2, a copy of version 1, is its shadow: the rollout series too.
    repository = workdir / "repo"
    for version in ("1", "2"):
        make_artifacts(repository / "tiny" / version)
    setting = {"version_policy": {"all": {}}, "rollout": {"shadow": "2"}}
    (repository / "tiny" / "model.json").write_text(json.dumps(setting))
    server = start_server({"MODEL_REPOSITORY": str(repository)})
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(RULES.parent / name) for name in config["rule_files"]]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [server.base_url.removeprefix("http://")]}]
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (workdir / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    scraped = Scraped(f"http://127.0.0.1:{port}", server, 0)
    try:
        deadline = time.monotonic() + 60
        while not _ready(scraped.api):
            assert process.poll() is None, (workdir / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.2)
        with httpx.Client(base_url=server.base_url) as client:
            for i in range(30):
                texts = ["a gripping , beautifully acted film", "dull", "funny"][: 1 + i % 3]
                assert client.post("/classify", json={"texts": texts}).status_code == 200
                scraped.texts_sent += len(texts)
            assert client.post("/classify", json={"texts": []}).status_code == 422
            assert client.get("/nowhere").status_code == 404
        scraped.wait_for("sum(rnn_classifier_predictions_total)", scraped.texts_sent)
        # A few more scrapes and rule evaluations, so rates have their two samples.
        scraped.wait_for("count(count_over_time(up[1m]) >= 5)", 1)
        yield scraped
    finally:
        process.terminate()
        process.wait(30)
        stop_server(server)


def _ready(api: str) -> bool:
    try:
        return httpx.get(api + "/-/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_prometheus_has_our_per_label_counter_and_histograms(scraped: Scraped) -> None:
    predictions = scraped.query("rnn_classifier_predictions_total")
    assert {series["metric"]["label"] for series in predictions} <= {"neg", "pos"}
    assert sum(float(series["value"][1]) for series in predictions) == scraped.texts_sent
    classify = scraped.query(
        'sum by (status) (rnn_classifier_request_duration_seconds_count{path="/classify"})'
    )
    assert {s["metric"]["status"]: float(s["value"][1]) for s in classify} == {"2xx": 30, "4xx": 1}
    for histogram in ("inference_duration_seconds", "queue_duration_seconds", "batch_size"):
        (bucket,) = scraped.query(f'sum(rnn_classifier_{histogram}_bucket{{le="+Inf"}})')
        assert float(bucket["value"][1]) > 0, histogram
    (validation,) = scraped.query('rnn_classifier_errors_total{type="validation"}')
    assert float(validation["value"][1]) == 1


def test_every_rule_evaluates_and_a_healthy_service_fires_no_alert(scraped: Scraped) -> None:
    expressions = rule_expressions()
    for name, expr in expressions.items():
        result = scraped.query(expr)
        if name in recording_rules():  # every recording rule has data
            assert result, name
        else:  # alerts: evaluate, and nothing is wrong
            assert result == [], (name, result)
    # Prometheus evaluates them itself too, without error.
    groups = httpx.get(scraped.api + "/api/v1/rules").json()["data"]["groups"]
    evaluated = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert evaluated.keys() == expressions.keys()
    for name, rule in evaluated.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))


def test_every_dashboard_query_has_data(scraped: Scraped) -> None:
    for target in dashboard_targets():
        expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL)
        assert scraped.query(expr), (target["panel"], expr)


def test_the_adapter_query_behind_the_hpa_metric_has_a_value_per_instance(
    scraped: Scraped,
) -> None:
    for rule in yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]:
        series = rule["seriesQuery"].split("{")[0]
        # What the adapter substitutes for one pod; here the instance stands in for the pod.
        expr = (
            rule["metricsQuery"]
            .replace("<<.Series>>", series)
            .replace("<<.LabelMatchers>>", 'job="rnn-classifier"')
            .replace("<<.GroupBy>>", "instance")
        )
        (value,) = scraped.query(expr)
        assert value["metric"]["instance"] == scraped.server.base_url.removeprefix("http://")
