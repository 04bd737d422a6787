"""k8s/: every overlay builds with kustomize and every object validates offline.

Built-in kinds validate strictly against the Kubernetes JSON schemas that kubernetes-validate ships.
The operators' custom resources (KEDA, RabbitMQ, MongoDB) have no schema here: they are skipped by API
group and checked instead for what Postwire relies on (what they point at exists). kustomize is the
standalone binary when installed, else the one built into kubectl (this machine kind ships kubectl).
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from postwire_cli.supervisor_conf import SERVICES
from postwire_platform.broker import BINDINGS

OVERLAYS = ["dev", "prod"]
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
CUSTOM_GROUPS = {"keda.sh", "rabbitmq.com", "mongodbcommunity.mongodb.com"}
EXTERNAL_SECRETS = {"prod": {"postwire-secrets", "postwire-rabbitmq-user", "postwire-mongodb-password",
                             "gateway-tls", "provider-ingest-tls", "smtp-tls"},
                    "dev": {"gateway-tls", "provider-ingest-tls"}}
"""Secrets an overlay expects to exist already (created by the operator or cert-manager)."""


def kustomize_command() -> list[str]:
    if (binary := shutil.which("kustomize")) is not None:
        return [binary, "build"]
    if (kubectl := shutil.which("kubectl")) is not None:
        return [kubectl, "kustomize"]
    pytest.fail("neither kustomize nor kubectl is installed: `apt-get install kubectl` "
                "(or put a kustomize binary on PATH)")


@cache
def build(path: Path) -> tuple[dict[str, Any], ...]:
    out = subprocess.run([*kustomize_command(), str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, f"kustomize build {path} failed:\n{out.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def _group(doc: dict[str, Any]) -> str:
    api = str(doc["apiVersion"])
    return api.split("/")[0] if "/" in api else ""


def _of(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module")
def k8s(repo_root: Path) -> Path:
    return repo_root / "k8s"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_builds_and_every_object_validates(k8s: Path, overlay: str) -> None:
    docs = build(k8s / "overlays" / overlay)
    assert len(docs) > 40
    custom = 0
    for doc in docs:
        if _group(doc) in CUSTOM_GROUPS:
            custom += 1
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']} against "
                            f"Kubernetes {version}: {exc.message} at {list(exc.path)}")
    assert custom >= 5
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert namespaces == {f"postwire-{overlay}" if overlay == "dev" else "postwire"}


def test_the_base_and_infra_build_on_their_own(k8s: Path) -> None:
    assert {d["metadata"]["name"] for d in build(k8s / "base") if d["kind"] == "Deployment"} == set(
        SERVICES)
    kinds = {d["kind"] for d in build(k8s / "infra")}
    assert {"RabbitmqCluster", "MongoDBCommunity"} <= kinds


def test_the_validator_rejects_a_broken_object(k8s: Path) -> None:
    deployment = dict(_of(build(k8s / "overlays" / "dev"), "Deployment")["gateway"])
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)
    unknown = {**deployment, "spec": {**deployment["spec"], "replicaz": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_runs_non_root_read_only_with_probes_and_resources(
        k8s: Path, overlay: str) -> None:
    deployments = _of(build(k8s / "overlays" / overlay), "Deployment")
    assert set(SERVICES) <= set(deployments)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            assert container["livenessProbe"] and container["readinessProbe"], name
        if name in SERVICES:
            (container,) = pod["containers"]
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert pod["serviceAccountName"] == name
            assert pod["terminationGracePeriodSeconds"] > 15  # SHUTDOWN_TIMEOUT drains first


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_between_objects_resolve(k8s: Path, overlay: str) -> None:
    docs = build(k8s / "overlays" / overlay)
    deployments = _of(docs, "Deployment")
    services = _of(docs, "Service")
    config_maps = set(_of(docs, "ConfigMap"))
    secrets = set(_of(docs, "Secret")) | EXTERNAL_SECRETS[overlay]
    accounts = set(_of(docs, "ServiceAccount"))
    pod_labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}

    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] in accounts, name
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, name
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, name
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, name
    for name, service in services.items():
        selector = service["spec"]["selector"]
        assert any(_selects(selector, labels) for labels in pod_labels.values()), name
    for ingress in _of(docs, "Ingress").values():
        for tls in ingress["spec"].get("tls", []):
            assert tls["secretName"] in secrets
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports
    for pdb in _of(docs, "PodDisruptionBudget").values():
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(_selects(selector, labels) for labels in pod_labels.values())


def test_prod_scales_consumers_on_queue_depth_and_front_doors_on_cpu(k8s: Path) -> None:
    docs = build(k8s / "overlays" / "prod")
    deployments = _of(docs, "Deployment")
    scaled = _of(docs, "ScaledObject")
    hpas = _of(docs, "HorizontalPodAutoscaler")
    auth = _of(docs, "TriggerAuthentication")
    assert set(scaled) == {"email-dispatcher", "sms-dispatcher", "whatsapp-dispatcher",
                           "webhook-fanout"}
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == {
        "gateway", "provider-ingest"}
    for name, obj in scaled.items():
        assert obj["spec"]["scaleTargetRef"]["name"] in deployments
        for trigger in obj["spec"]["triggers"]:
            assert trigger["type"] == "rabbitmq"
            assert trigger["metadata"]["queueName"] in BINDINGS, trigger
            assert trigger["metadata"]["mode"] == "QueueLength"
            assert trigger["authenticationRef"]["name"] in auth
        # KEDA makes its own HPA: never two autoscalers on one Deployment.
        assert name not in {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()}
    for obj in auth.values():
        for ref in obj["spec"]["secretTargetRef"]:
            assert ref["name"] in EXTERNAL_SECRETS["prod"] and ref["key"] == "AMQP_URL"
    assert len(_of(docs, "NetworkPolicy")) >= 5
    assert "Secret" not in {d["kind"] for d in docs}  # yours is never overwritten


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rabbitmq_and_mongodb_come_from_their_operators(k8s: Path, overlay: str) -> None:
    docs = build(k8s / "overlays" / overlay)
    (rabbit,) = _of(docs, "RabbitmqCluster").values()
    (mongo,) = _of(docs, "MongoDBCommunity").values()
    assert rabbit["spec"]["replicas"] == (3 if overlay == "prod" else 1)
    assert mongo["spec"]["type"] == "ReplicaSet"
    assert mongo["spec"]["members"] == (3 if overlay == "prod" else 1)
    for kind in ("Vhost", "User", "Permission"):
        for obj in _of(docs, kind).values():
            assert obj["spec"]["rabbitmqClusterReference"]["name"] == rabbit["metadata"]["name"]
    config = next(iter(_of(docs, "ConfigMap")[n] for n in _of(docs, "ConfigMap")
                       if n.startswith("postwire-config")))
    assert config["data"]["AMQP_QUEUE_TYPE"] == "quorum"
    assert config["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    secrets = set(_of(docs, "Secret")) | EXTERNAL_SECRETS[overlay]
    user = mongo["spec"]["users"][0]
    assert user["passwordSecretRef"]["name"] in secrets
    for obj in _of(docs, "User").values():
        assert obj["spec"]["importCredentialsSecret"]["name"] in secrets


def test_the_collector_component_ships_the_same_config_as_compose(repo_root: Path) -> None:
    shipped = (repo_root / "k8s" / "components" / "otel-collector" / "config.yaml").read_text()
    assert shipped == (repo_root / "deploy" / "otel-collector" / "config.yaml").read_text()
