"""The observability configuration under deploy/ is consistent: what Grafana, Prometheus and the collector
are given refers to things that exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from postwire_cli.supervisor_conf import SERVICES


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def test_dashboards_use_only_provisioned_datasources_and_have_unique_ids(repo_root: Path) -> None:
    grafana = repo_root / "deploy" / "grafana"
    sources = _yaml(grafana / "provisioning" / "datasources" / "datasources.yaml")["datasources"]
    uids = {s["uid"] for s in sources}
    assert uids == {"prometheus", "tempo"}
    boards = [json.loads(p.read_text()) for p in sorted((grafana / "dashboards").glob("*.json"))]
    assert {b["uid"] for b in boards} == {"postwire-overview", "postwire-delivery",
                                         "postwire-webhooks", "postwire-queues"}
    for board in boards:
        panels = _panels(board)
        assert len({p["id"] for p in panels}) == len(panels), board["uid"]
        for panel in panels:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids
            assert panel["targets"], f"{board['uid']}: {panel['title']} queries nothing"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids
                assert target["expr"].strip()
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
    provider = _yaml(grafana / "provisioning" / "dashboards" / "dashboards.yaml")["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_prometheus_scrapes_every_service(repo_root: Path) -> None:
    config = _yaml(repo_root / "deploy" / "prometheus" / "prometheus.yml")
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "postwire")
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{name}:8080" for name in SERVICES}
    assert job["metrics_path"] == "/metrics"


def test_the_collector_pipeline_uses_only_defined_components(repo_root: Path) -> None:
    config = _yaml(repo_root / "deploy" / "otel-collector" / "config.yaml")
    for pipeline in config["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for name in pipeline.get(kind, []):
                assert name in config[kind], f"{kind[:-1]} {name} is not defined"
    assert set(config["service"]["extensions"]) <= set(config["extensions"])
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
