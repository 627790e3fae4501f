"""`snapshots status | refresh | history` as an operator runs them against a running service."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import Gateway, Simulator, runs_with_outcome, wait_for
from snapshots.api.app import create_app
from snapshots.config import JobsConfig, load_jobs
from snapshots.operator_diff import MAX_FIELDS, MAX_ITEMS, diff
from snapshots.simulator import github_data, pagerduty_data
from snapshots.uvicorn_runner import start_in_thread

PD = "pagerduty.schedule_users"
COLLABORATORS = "github.repo_collaborators"
PROGRESS_BAR = ("\u2501", "\r", "\x1b[")  # rich's bar segment, carriage returns, escapes


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
min_refresh_interval = "1ms"
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

    before = {u["email"] for u in pagerduty_data.on_call_users(1, rotation=0)}
    after = {u["email"] for u in pagerduty_data.on_call_users(1, rotation=1)}
    assert result.returncode == 0, result.stderr
    assert "version 2:" in result.stdout
    assert "version 1:" in result.stdout
    lines = result.stdout.splitlines()
    assert after - before
    assert before - after
    for user in after - before:
        assert f"  + {user}" in lines
    for user in before - after:
        assert f"  - {user}" in lines


def test_history_diff_names_collaborators_by_login_and_says_what_changed(
    tmp_path: Path,
    start_gateway: Callable[[JobsConfig], Gateway],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text(
        f"""
[providers.github]
base_url = "{simulator.url}/github"
token = "sim-github-token"
[datasets."{COLLABORATORS}"]
min_refresh_interval = "1ms"
keys = ["acme/repo-01"]
"""
    )
    gateway = start_gateway(load_jobs(path, env={}))
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    simulator.mutate("github", "acme/repo-01")
    wait_for(
        lambda: (
            "version 2"
            in snapshots(gateway, "refresh", COLLABORATORS, "acme/repo-01", "--wait", "10").stdout
        )
    )

    result = snapshots(gateway, "history", COLLABORATORS, "acme/repo-01", "--diff")

    old = {u["login"]: u for u in github_data.collaborators("", 1, mutation=0)}
    new = {u["login"]: u for u in github_data.collaborators("", 1, mutation=1)}
    (added,) = set(new) - set(old)
    (removed,) = set(old) - set(new)
    (demoted,) = (login for login in set(old) & set(new) if old[login] != new[login])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  1 added, 1 removed, 1 changed" in lines
    assert f"  + {added}" in lines
    assert f"  - {removed}" in lines
    (change,) = (line for line in lines if line.startswith(f"  ~ {demoted}: "))
    assert "permissions.admin true -> false" in change
    assert "role_name admin -> write" in change
    assert "permissions.push" not in change  # only the fields that changed
    assert "id=" not in result.stdout
    for user in (added, removed, demoted):
        assert str(new.get(user, old.get(user, {}))["id"]) not in result.stdout


def test_history_diff_output_is_bounded_and_shows_control_characters() -> None:
    older = [{"login": f"user-{n:03d}", "n": n} for n in range(100)]
    newer = [
        {"login": f"user-{n:03d}", "n": -n, "extra": {f"f{i}": i for i in range(10)}}
        for n in range(50, 200)
    ] + [{"login": "evil\x1b[2J\r"}]

    lines = diff(older, newer).lines()

    assert lines[0] == "101 added, 50 removed, 50 changed"
    assert len(lines) == 1 + 3 * (MAX_ITEMS + 1)
    assert "+ … and 81 more added" in lines
    changed = next(line for line in lines if line.startswith("~ user-051: "))
    assert changed.endswith(f"and {10 + 1 - MAX_FIELDS} more fields")
    assert "+ evil\\x1b[2J\\x0d" in lines
    assert not any("\x1b" in line or "\r" in line for line in lines)


def test_api_errors_reach_the_operator_with_exit_1(gateway: Gateway) -> None:
    result = snapshots(gateway, "refresh", "nope.dataset", "X")

    assert result.returncode == 1
    assert "404 unknown_dataset" in result.stderr


def test_refresh_of_a_dataset_without_a_terminal_prints_one_plain_line_per_key(
    gateway: Gateway,
) -> None:
    result = snapshots(gateway, "refresh", PD)

    assert result.returncode == 0, result.stderr
    for mark in PROGRESS_BAR:
        assert mark not in result.stdout
    lines = result.stdout.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == ["PSCH001", "PSCH002"]
    assert all(line.split(": ")[1].startswith("unchanged") for line in lines)


def test_refresh_of_a_dataset_on_a_terminal_shows_a_progress_bar(gateway: Gateway) -> None:
    primary, secondary = pty.openpty()
    env = {**os.environ, "SNAPSHOTS_URL": gateway.server.url, "COLUMNS": "120"}
    env.pop("TTY_COMPATIBLE", None)
    env.pop("TTY_INTERACTIVE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "snapshots.cli", "refresh", PD],
        stdout=secondary,
        stderr=subprocess.PIPE,
        env={**env, "TERM": "xterm"},
    )
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    assert process.wait(timeout=60) == 0
    text = output.decode(errors="replace")
    assert "\u2501" in text  # the bar
    assert "PSCH001: unchanged" in text
    assert "PSCH002: unchanged" in text


def test_status_with_every_dataset_disabled_says_which_provider_settings_to_add(
    start_gateway: Callable[[JobsConfig], Gateway],
    every_dataset_config: Callable[..., JobsConfig],
) -> None:
    gateway = start_gateway(every_dataset_config(without_token=("pagerduty", "github", "jira")))

    result = snapshots(gateway, "status")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    for box in ("\u250f", "\u2503", "\u2501", "\u2502"):  # no (empty) tables
        assert box not in out
    assert "No dataset is enabled" in out
    lines = out.splitlines()
    for provider, datasets in (
        ("pagerduty", "pagerduty.escalation_policy, pagerduty.schedule_users"),
        ("github", "github.repo, github.repo_collaborators"),
        ("jira", "jira.project, jira.project_issues"),
    ):
        (line,) = (line for line in lines if f"provider {provider} has no token" in line)
        assert datasets in line
        assert f"SNAPSHOTS_{provider.upper()}_TOKEN" in line


def test_status_on_an_api_replica_before_any_worker_published_says_so(
    tmp_path: Path, database_url: str, simulator: Simulator, db: psycopg.Connection[Any]
) -> None:
    """An API replica has no budget of its own to show: with no worker running, the budgets
    are not published, and both the JSON API and `snapshots status` say that."""
    path = tmp_path / "jobs.toml"
    path.write_text(
        f'[providers.pagerduty]\nbase_url = "{simulator.url}/pagerduty"\n'
        f'token = "sim-pagerduty-token"\n[datasets."{PD}"]\nkeys = ["PSCH001"]\n'
    )
    replica = Gateway(
        start_in_thread(create_app(load_jobs(path, env={}), database_url, role="api"))
    )
    try:
        providers = {p["provider"]: p for p in replica.http.get("/api/v1/providers").json()}
        result = snapshots(replica, "status")
    finally:
        replica.stop()

    assert providers["pagerduty"]["budget"] is None
    assert providers["pagerduty"]["published"] is None
    assert result.returncode == 0, result.stderr
    assert "not published yet: no active worker" in result.stdout
    assert simulator.requests() == 0  # an API replica never calls upstream
