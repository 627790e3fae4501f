"""Monitoring: the gauges the alerting rules need move with the service's state, the shipped
dashboard and rules query only metric and label names the service exports, and the rules
pass `promtool check rules` and their own unit tests (`promtool test rules`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import SIM_TOKEN, Gateway, Simulator, runs_with_outcome, wait_for
from snapshots.config import JobsConfig, load_jobs

StartGateway = Callable[[JobsConfig], Gateway]
ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "snapshots-dashboard.json"
RULES = ROOT / "deploy" / "prometheus" / "snapshots-rules.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "snapshots-rules.test.yaml"
PD = "pagerduty.schedule_users"
# Labels Prometheus adds to every scraped series itself (not the service's to export).
TARGET_LABELS = {"instance", "job"}
# Grafana's variables, replaced by a value of the right type before parsing.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    """Every sample of a scrape by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def one_key_config(tmp_path: Path, simulator: Simulator) -> JobsConfig:
    """PagerDuty with one key and no retries (a 500 fails at once), and a disabled dataset."""
    path = tmp_path / "jobs.toml"
    path.write_text(
        f"""
[providers.pagerduty]
base_url = "{simulator.url}/pagerduty"
token = "{SIM_TOKEN}"
budget = "900/60s"
max_retries = 0

[datasets."{PD}"]
ttl = "5m"
min_refresh_interval = "1ms"
keys = ["PSCH001"]

[datasets."github.repo"]
"""
    )
    return load_jobs(path, env={})


def test_key_gauges_count_a_never_fetched_key_stale_and_failing_until_it_is_fetched(
    start_gateway: StartGateway,
    one_key_config: JobsConfig,
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    simulator.add_fault("pagerduty", "error", status=500, count=50)
    gateway = start_gateway(one_key_config)
    wait_for(lambda: runs_with_outcome(db, "failed") >= 1)
    failing = _samples(gateway.http.get("/metrics").text)
    simulator.clear_faults("pagerduty")
    fetched = gateway.http.post(f"/api/v1/refresh/{PD}/PSCH001", params={"wait": 10})
    recovered = _samples(gateway.http.get("/metrics").text)
    standby = start_gateway(one_key_config)  # the same deployment's second worker
    standby_samples = _samples(standby.http.get("/metrics").text)

    # Never fetched: stale (no snapshot at all) and failing, which snapshot ages cannot show.
    assert _value(failing, "snapshots_dataset_keys", dataset=PD) == 1
    assert _value(failing, "snapshots_dataset_stale_keys", dataset=PD) == 1
    assert _value(failing, "snapshots_dataset_failing_keys", dataset=PD) == 1
    assert _value(failing, "snapshots_dataset_ttl_seconds", dataset=PD) == 300
    assert _value(failing, "snapshots_dataset_enabled", dataset=PD) == 1
    assert _value(failing, "snapshots_dataset_enabled", dataset="github.repo") == 0
    assert _value(failing, "snapshots_dataset_keys", dataset="github.repo") == 0
    assert _value(failing, "snapshots_ready") == 1
    assert _value(failing, "snapshots_worker_active") == 1
    assert fetched.status_code == 200, fetched.text
    assert _value(recovered, "snapshots_dataset_stale_keys", dataset=PD) == 0
    assert _value(recovered, "snapshots_dataset_failing_keys", dataset=PD) == 0
    assert _value(recovered, "snapshots_budget_limit", provider="pagerduty") == 900
    # The second process stands by: it says so, and the pair has exactly one active worker.
    assert _value(standby_samples, "snapshots_worker_active") == 0
    assert _value(standby_samples, "snapshots_ready") == 1
