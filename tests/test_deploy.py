"""The production artefacts say what the README promises: a multi-stage, non-root image with a
health check, and Kubernetes manifests with an API readiness probe, two workers and secrets
taken from a Secret (no container engine or cluster runs here; hadolint lints the image in CI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _manifests() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((ROOT / "deploy").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[(doc["kind"], doc.get("metadata", {}).get("name", ""))] = doc
    return found


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def test_containerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    lines = (ROOT / "Containerfile").read_text().splitlines()
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2
    assert "AS build" in stages[0]
    assert "USER 10001" in lines
    health = next(line for line in lines if line.startswith("HEALTHCHECK"))
    healthcheck = " ".join(lines[lines.index(health) : lines.index(health) + 2])
    assert "/healthz" in healthcheck
    assert lines[-1] == 'CMD ["snapshots", "serve", "--host", "0.0.0.0", "--port", "8000"]'
    assert not any("[dev]" in line or "[test]" in line for line in lines)  # runtime deps only


def test_manifests_run_an_api_with_readiness_and_two_workers_on_secrets() -> None:
    found = _manifests()
    api = found[("Deployment", "snapshots-api")]
    worker = found[("Deployment", "snapshots-worker")]
    assert ("Secret", "snapshots") in found
    assert ("Service", "snapshots") in found

    assert _container(api)["args"][:2] == ["snapshots", "api"]
    assert _container(api)["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert worker["spec"]["replicas"] == 2
    assert _container(worker)["args"][:2] == ["snapshots", "worker"]
    for deployment in (api, worker):
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
        env = {e["name"]: e for e in _container(deployment)["env"]}
        for secret in ("SNAPSHOTS_DATABASE_URL", "PAGERDUTY_TOKEN", "GITHUB_TOKEN", "JIRA_TOKEN"):
            assert env[secret]["valueFrom"]["secretKeyRef"]["name"] == "snapshots"
        assert env["SNAPSHOTS_INSTANCE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
