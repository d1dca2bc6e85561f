"""deploy/k8s: schema-valid offline (kubernetes-validate, strict) and consistent with the service.

The ServiceMonitor is a custom resource kubernetes-validate has no schema for: it is checked here
as YAML against the Service it must select, not against the Prometheus Operator's schema.
"""

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import AliasChoices

from app.http.shutdown import BACKLOG_GRACE_S, REQUEST_GRACE_S
from app.settings import Settings
from tests.support.artifacts import ROOT

K8S = ROOT / "deploy" / "k8s"
ADAPTER_VALUES = ROOT / "deploy" / "monitoring" / "prometheus-adapter-values.yaml"
# The oldest Kubernetes with the native preStop sleep on by default (beta), and the newest schema.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CORE_KINDS = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
# Seconds left for the process to exit after SHUTDOWN_TIMEOUT_S before the kubelet's SIGKILL.
MIN_EXIT_MARGIN_S = 5


def render(directory: Path) -> list[dict[str, Any]]:
    """What `kubectl kustomize` renders for a base that only lists resources (asserted)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {"apiVersion", "kind", "resources"}
    assert not unsupported, f"this loader does not apply {unsupported}: extend it"
    return [
        doc
        for resource in kustomization["resources"]
        for doc in yaml.safe_load_all((directory / resource).read_text())
        if doc is not None
    ]


MANIFESTS = render(K8S)


def one(kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in MANIFESTS if doc["kind"] == kind]
    return found


def container() -> dict[str, Any]:
    (api,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return api


def container_env() -> dict[str, str]:
    return {item["name"]: item["value"] for item in container()["env"]}


def cpu_cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def setting_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        names |= {choice.upper() for choice in choices if isinstance(choice, str)}
    return names


@pytest.fixture
def pod_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the service resolves inside the pod, from the Deployment's env."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in container_env().items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_manifests_pass_strict_schema_validation(version: str) -> None:
    validated = set()
    for doc in MANIFESTS:
        if doc["kind"] in CORE_KINDS:
            kubernetes_validate.validate(doc, version, strict=True)
            validated.add(doc["kind"])
    assert validated == CORE_KINDS


def test_strict_validation_rejects_a_misspelt_field() -> None:
    """Proves the check above can fail: strict mode catches what plain YAML would not."""
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_every_env_name_is_a_setting_of_the_service() -> None:
    unknown = set(container_env()) - setting_names()
    assert not unknown, f"the service reads no such setting: {unknown}"


def test_grace_period_covers_prestop_delay_and_drain(pod_settings: Settings) -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    pre_stop = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    needed = (
        pre_stop
        + pod_settings.shutdown_delay_s
        + BACKLOG_GRACE_S  # app/http/shutdown.py: taking in the backlog, requests arriving
        + REQUEST_GRACE_S
        + pod_settings.shutdown_timeout_s
    )
    assert pod["terminationGracePeriodSeconds"] >= needed + MIN_EXIT_MARGIN_S


def test_engine_threads_match_the_cpu_limit(pod_settings: Settings) -> None:
    resources = container()["resources"]
    limit = cpu_cores(resources["limits"]["cpu"])
    assert pod_settings.workers * pod_settings.threads_per_worker() == limit
    assert resources["requests"] == resources["limits"]  # Guaranteed QoS


def test_probes_use_the_health_endpoints_on_the_named_port() -> None:
    api = container()
    port_names = {port["name"] for port in api["ports"]}
    paths = {probe: api[probe]["httpGet"]["path"] for probe in ("startupProbe", "readinessProbe", "livenessProbe")}  # fmt: skip
    assert paths == {
        "startupProbe": "/health/live",  # the server listens only once the model is loaded
        "readinessProbe": "/health/ready",
        "livenessProbe": "/health/live",
    }
    for probe in paths:
        assert api[probe]["httpGet"]["port"] in port_names
    startup = api["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60  # model load on a slow node


def test_grpc_is_exposed_where_the_service_listens_for_it(pod_settings: Settings) -> None:
    ports = {port["name"]: port["containerPort"] for port in container()["ports"]}
    assert ports == {"http": pod_settings.port, "grpc": pod_settings.grpc_port}
    grpc = next(p for p in one("Service")["spec"]["ports"] if p["name"] == "grpc")
    assert grpc["targetPort"] == "grpc" and grpc["appProtocol"] == "kubernetes.io/h2c"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"EXPOSE {pod_settings.port} {pod_settings.grpc_port}" in dockerfile


def test_container_runs_locked_down_as_the_image_user() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    effective = {**pod["securityContext"], **container()["securityContext"]}
    assert effective["runAsNonRoot"] is True
    assert effective["runAsUser"] == 10001
    assert effective["readOnlyRootFilesystem"] is True
    assert effective["allowPrivilegeEscalation"] is False
    assert effective["capabilities"]["drop"] == ["ALL"]
    assert effective["seccompProfile"]["type"] == "RuntimeDefault"
    user = re.search(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert user is not None and int(user.group(1)) == effective["runAsUser"]
    tmp = next(m for m in container()["volumeMounts"] if m["mountPath"] == "/tmp")
    volume = next(v for v in pod["volumes"] if v["name"] == tmp["name"])
    assert "emptyDir" in volume


def test_service_hpa_pdb_and_servicemonitor_point_at_the_deployment() -> None:
    deployment, service = one("Deployment"), one("Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    port_names = {port["name"] for port in container()["ports"]}

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return selector.items() <= labels.items()

    assert selects(service["spec"]["selector"], pod_labels)
    assert all(
        port["targetPort"] in port_names and port["name"] for port in service["spec"]["ports"]
    )
    assert selects(one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels)
    target = one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])

    monitor = one("ServiceMonitor")
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    service_ports = {port["name"] for port in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in service_ports
        assert endpoint["path"] == "/metrics"
        assert re.fullmatch(r"\d+(ms|s|m)", endpoint["interval"])


def test_hpa_custom_metric_is_the_one_prometheus_adapter_exposes() -> None:
    hpa_metrics = one("HorizontalPodAutoscaler")["spec"]["metrics"]
    pods_metrics = {m["pods"]["metric"]["name"] for m in hpa_metrics if m["type"] == "Pods"}
    assert {m["resource"]["name"] for m in hpa_metrics if m["type"] == "Resource"} == {"cpu"}
    rules = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    exposed = {rule["name"]["as"] for rule in rules}
    assert pods_metrics and pods_metrics <= exposed
    for rule in rules:  # per-pod: the adapter maps the series' pod and namespace labels
        assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


def strategic_merge(base: Any, patch: Any) -> Any:
    """kustomize's strategic merge for what the overlay patches: maps merged key by key, lists of
    named items merged by name (env, volumeMounts, volumes, containers), other values replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: strategic_merge(base.get(k), v) for k, v in patch.items()}}
    if isinstance(base, list) and isinstance(patch, list) and all("name" in i for i in patch):
        merged = {item["name"]: item for item in base}
        for item in patch:
            merged[item["name"]] = strategic_merge(merged.get(item["name"]), item)
        return list(merged.values())
    return patch


def repository_overlay(folder: str) -> list[dict[str, Any]]:
    overlay = K8S / folder
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    assert set(kustomization) == {"apiVersion", "kind", "resources", "patches"}
    assert kustomization["resources"][0] == "../"
    docs = [*MANIFESTS]
    for resource in kustomization["resources"][1:]:
        docs += list(yaml.safe_load_all((overlay / resource).read_text()))
    for entry in kustomization["patches"]:
        patch = yaml.safe_load((overlay / entry["path"]).read_text())
        docs = [
            strategic_merge(doc, patch) if doc["kind"] == patch["kind"] else doc for doc in docs
        ]
    return docs


def test_the_volume_overlay_mounts_a_shared_volume_read_only_and_polls_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = repository_overlay("repository-volume")
    for doc in docs:
        if doc["kind"] in {*CORE_KINDS, "PersistentVolumeClaim"}:
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (claim,) = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    pod = deployment["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    env = {item["name"]: item["value"] for item in api["env"]}
    assert set(env) - setting_names() == set()
    assert env["MODEL_CONTROL"] == "poll"
    (mount,) = [m for m in api["volumeMounts"] if m["mountPath"] == env["MODEL_REPOSITORY"]]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert set(claim["spec"]["accessModes"]) <= {"ReadOnlyMany", "ReadWriteMany"}
    assert {m["mountPath"] for m in api["volumeMounts"]} == {"/tmp", "/models"}  # base kept
    # The service accepts the pod's settings as they are.
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().model_repository == "/models"


def test_the_repository_overlay_polls_a_bucket_with_a_bounded_cache_and_no_shared_volume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = repository_overlay("repository")
    for doc in docs:
        if doc["kind"] in {*CORE_KINDS, "ServiceAccount"}:
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    pod = deployment["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    env = {item["name"]: item["value"] for item in api["env"]}
    assert set(env) - setting_names() == set()
    assert env["MODEL_REPOSITORY"].startswith("s3://") and env["MODEL_CONTROL"] == "poll"
    # Credentials: the service account's IRSA role, or keys from an optional Secret.
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]
    ((secret,),) = [list(source.values()) for source in api["envFrom"]]
    assert secret["optional"] is True
    # The cache: its own emptyDir (the root filesystem is read-only), bounded above the setting.
    (mount,) = [m for m in api["volumeMounts"] if m["mountPath"] == env["MODEL_CACHE_DIR"]]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["emptyDir"]["sizeLimit"].endswith("Gi")
    assert int(env["MODEL_CACHE_MAX_MB"]) < int(volume["emptyDir"]["sizeLimit"][:-2]) * 1024
    assert {m["mountPath"] for m in api["volumeMounts"]} == {"/tmp", "/cache"}  # base kept
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().model_repository == env["MODEL_REPOSITORY"]
