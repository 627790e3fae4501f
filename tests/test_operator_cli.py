"""`snapshots status | refresh | history` as an operator runs them against a running service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import Gateway, Simulator, runs_with_outcome, wait_for
from snapshots.config import JobsConfig, load_jobs
from snapshots.simulator import pagerduty_data

PD = "pagerduty.schedule_users"


@pytest.fixture
def gateway(
    tmp_path: Path,
    start_gateway: Callable[[JobsConfig], Gateway],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> Gateway:
    path = tmp_path / "jobs.toml"
    path.write_text(
        f"""
[providers.pagerduty]
base_url = "{simulator.url}/pagerduty"
token = "sim-pagerduty-token"
[datasets."{PD}"]
min_refresh_interval = "10ms"
keys = ["PSCH001", "PSCH002"]
"""
    )
    started = start_gateway(load_jobs(path, env={}))
    wait_for(lambda: runs_with_outcome(db, "changed") == 2)
    return started


def snapshots(gateway: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SNAPSHOTS_URL": gateway.server.url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "snapshots.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_status_shows_keys_freshness_and_budgets(gateway: Gateway) -> None:
    table = snapshots(gateway, "status")
    as_json = snapshots(gateway, "status", "--json")

    assert table.returncode == 0, table.stderr
    assert PD in table.stdout
    assert "PSCH001" in table.stdout
    assert "PSCH002" in table.stdout
    assert "budgets" in table.stdout
    assert "900/1.0m" in table.stdout
    data = json.loads(as_json.stdout)
    assert [k["key"] for k in data["keys"][PD]] == ["PSCH001", "PSCH002"]
    assert {p["provider"] for p in data["providers"]} >= {"pagerduty"}


def test_refresh_of_a_key_and_of_a_whole_dataset(
    gateway: Gateway, simulator: Simulator, db: psycopg.Connection[Any]
) -> None:
    simulator.rotate_schedule("PSCH001")

    one = snapshots(gateway, "refresh", PD, "PSCH001", "--wait", "10")
    every = snapshots(gateway, "refresh", PD)

    assert one.returncode == 0, one.stderr
    assert "version 2" in one.stdout
    assert every.returncode == 0, every.stderr
    assert "PSCH001: unchanged" in every.stdout
    assert "PSCH002: unchanged" in every.stdout
    assert db.execute("SELECT count(*) FROM refresh_runs WHERE trigger = 'demand'").fetchone() == (
        3,
    )


def test_history_diff_names_who_was_added_and_removed(
    gateway: Gateway, simulator: Simulator
) -> None:
    simulator.rotate_schedule("PSCH001")
    snapshots(gateway, "refresh", PD, "PSCH001", "--wait", "10")

    result = snapshots(gateway, "history", PD, "PSCH001", "--diff")

    before = {u["id"] for u in pagerduty_data.on_call_users(1, rotation=0)}
    after = {u["id"] for u in pagerduty_data.on_call_users(1, rotation=1)}
    assert result.returncode == 0, result.stderr
    assert "version 2:" in result.stdout
    assert "version 1:" in result.stdout
    for user in after - before:
        assert f"id={user}" in result.stdout.split("added:")[1].splitlines()[0]
    for user in before - after:
        assert f"id={user}" in result.stdout.split("removed:")[1].splitlines()[0]


def test_api_errors_reach_the_operator_with_exit_1(gateway: Gateway) -> None:
    result = snapshots(gateway, "refresh", "nope.dataset", "X")

    assert result.returncode == 1
    assert "404 unknown_dataset" in result.stderr
