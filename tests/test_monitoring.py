"""Monitoring: the gauges the alerting rules need move with the service's state, the shipped
dashboard and rules query only metric and label names the service exports, and the rules
pass `promtool check rules` and their own unit tests (`promtool test rules`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import promql_parser
import psycopg
import pytest
import yaml
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


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


class Query:
    """One PromQL expression of the dashboard or the rules, and the labels it displays."""

    def __init__(self, where: str, expr: str, shown: set[str]) -> None:
        self.where = where
        self.expr = expr
        self.shown = shown  # legend {{label}}s, annotation $labels.x


def _queries() -> list[Query]:
    queries = []
    for panel in _panels(_dashboard()):
        for target in panel.get("targets", []):
            legend = set(re.findall(r"{{\s*(\w+)\s*}}", target.get("legendFormat", "")))
            queries.append(Query(f"panel {panel['title']!r}", target["expr"], legend))
    for rule in _rules():
        shown = set(re.findall(r"\$labels\.(\w+)", json.dumps(rule.get("annotations", {}))))
        queries.append(Query(f"alert {rule['alert']}", rule["expr"], shown))
    return queries


def _parse(expr: str) -> Any:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return promql_parser.parse(expr)


def _selectors_and_grouping(expr: Any) -> tuple[list[Any], set[str]]:
    """The vector selectors of `expr`, and the label names its by/on/group_x clauses name."""
    selectors: list[Any] = []
    grouping: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(node)
        elif isinstance(node, promql_parser.MatrixSelector):
            selectors.append(node.vector_selector)
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouping.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            if node.modifier.matching is not None:
                grouping.update(node.modifier.matching.labels)
            grouping.update(node.modifier.group_labels or [])
        return True

    promql_parser.walk(expr, visit)
    return selectors, grouping


@pytest.fixture
def exported(
    start_gateway: StartGateway,
    one_key_config: JobsConfig,
    db: psycopg.Connection[Any],
) -> dict[str, set[str]]:
    """Sample name -> label names, scraped from a running service that refreshed a key and
    served a hit, a 304 and a miss."""
    gateway = start_gateway(one_key_config)
    wait_for(lambda: runs_with_outcome(db, "changed") >= 1)
    hit = gateway.snapshot(PD, "PSCH001")
    gateway.http.get(
        f"/api/v1/snapshots/{PD}/PSCH001", headers={"If-None-Match": hit.headers["ETag"]}
    )
    gateway.snapshot(PD, "PSCH002")  # a miss
    wait_for(lambda: "snapshots_upstream_requests_total" in gateway.http.get("/metrics").text)
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(gateway.http.get("/metrics").text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


def test_dashboard_and_rules_query_only_metrics_and_labels_the_service_exports(
    exported: dict[str, set[str]],
) -> None:
    queries = _queries()
    problems = []
    for query in queries:
        selectors, grouping = _selectors_and_grouping(_parse(query.expr))
        carried = set(TARGET_LABELS)
        for selector in selectors:
            if selector.name not in exported:
                problems.append(f"{query.where}: {selector.name} is not exported")
                continue
            carried |= exported[selector.name]
            for matcher in selector.matchers.matchers:
                if matcher.name not in exported[selector.name] | TARGET_LABELS:
                    problems.append(f"{query.where}: {selector.name} has no label {matcher.name}")
        for label in (grouping | query.shown) - carried:
            problems.append(f"{query.where}: no metric of {query.expr!r} carries {label}")
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            metric, label = re.fullmatch(
                r"label_values\((\w+),\s*(\w+)\)", variable["query"]["query"]
            ).groups()  # type: ignore[union-attr]
            if label not in exported.get(metric, set()):
                problems.append(f"variable {variable['name']}: {metric} has no label {label}")

    assert len(queries) > 30  # every panel's targets and every rule were read
    assert problems == []


def test_dashboard_is_importable_with_a_templated_prometheus_datasource() -> None:
    dashboard = _dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    panels = [p for p in _panels(dashboard) if p["type"] != "row"]
    titles = {p["title"] for p in panels}

    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in panel["targets"])
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))
    for needed in (
        "Oldest snapshot age / TTL",
        "Stale keys",
        "Refresh outcomes",
        "Upstream answers by status",
        "Budget use",
        "Budget waiters",
        "Reads by result",
        "Leader",
    ):
        assert needed in titles


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a README heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_alert_has_a_summary_a_description_and_a_runbook_section_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    anchors = {_github_anchor(h) for h in re.findall(r"^#+ (.+)$", readme, re.M)}
    alerts = _rules()

    assert len(alerts) >= 6
    for rule in alerts:
        annotations = rule["annotations"]
        assert annotations["summary"], rule["alert"]
        assert annotations["description"], rule["alert"]
        anchor = annotations["runbook_url"].split("README.md#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert anchor in anchors, f"README has no section #{anchor}"
        assert "for" in rule, rule["alert"]  # no alert fires on one bad scrape


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed: apt-get install prometheus (CI installs it)")
    return subprocess.run(
        [promtool, *args], cwd=RULES.parent, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_rules() -> None:
    checked = _promtool("check", "rules", RULES.name)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in checked.stdout


def test_alerts_fire_in_promtool_rule_unit_tests() -> None:
    tested = _promtool("test", "rules", RULE_TESTS.name)
    alerts_tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    assert {"SnapshotsKeysStale", "SnapshotsNoActiveWorker", "SnapshotsNotReady"} <= alerts_tested
