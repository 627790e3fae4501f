"""The analysts' SQL surface: the README's worked examples run as written, views, retention."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import Gateway, Simulator, runs_with_outcome, sim_providers, wait_for
from snapshots.config import JobsConfig, load_jobs
from snapshots.simulator import github_data, jira_data, pagerduty_data

README = Path(__file__).resolve().parents[1] / "README.md"


def examples() -> dict[str, str]:
    """The SQL blocks of the README, by their `<!-- example: name -->` marker."""
    found = re.findall(r"<!-- example: ([\w-]+) -->\n```sql\n(.*?)```", README.read_text(), re.S)
    return dict(found)


@pytest.fixture
def seeded(
    tmp_path: Path,
    start_gateway: Callable[[JobsConfig], Gateway],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> psycopg.Connection[Any]:
    """Two versions of a schedule and of a repository's collaborators, one of a Jira project,
    moved to fixed dates so the README's literal times select known versions."""
    path = tmp_path / "jobs.toml"
    providers = sim_providers(simulator.url, jira='deployment = "server"\nbudget = "50/1s"')
    path.write_text(
        f"""
{providers}
[datasets."pagerduty.schedule_users"]
min_refresh_interval = "1ms"
keys = ["PSCH001"]
[datasets."github.repo_collaborators"]
min_refresh_interval = "1ms"
keys = ["acme/repo-03"]
[datasets."jira.project_issues"]
keys = ["PRJ3"]
"""
    )
    gateway = start_gateway(load_jobs(path, env={}))
    wait_for(lambda: runs_with_outcome(db, "changed") == 3)
    simulator.rotate_schedule("PSCH001")
    simulator.mutate("github", "acme/repo-03")
    for url in ("pagerduty.schedule_users/PSCH001", "github.repo_collaborators/acme/repo-03"):
        answer = gateway.http.post(f"/api/v1/snapshots/{url}/refresh", params={"wait": 10})
        assert answer.headers["X-Refresh-Outcome"] == "changed"
    dates = {
        ("PSCH001", 1): "2026-11-01 00:00+00",
        ("PSCH001", 2): "2026-11-02 00:00+00",
        ("acme/repo-03", 1): "2026-10-01 00:00+00",
        ("acme/repo-03", 2): "2026-10-15 00:00+00",
    }
    for (key, version), at in dates.items():
        db.execute(
            "UPDATE snapshots SET fetched_at = %s, verified_at = %s WHERE key = %s AND version = %s",
            (at, at, key, version),
        )
    return db


def test_readme_has_five_worked_examples() -> None:
    assert sorted(examples()) == [
        "issues-by-status",
        "lost-admin",
        "membership-changes",
        "on-call",
        "refresh-health",
    ]


def test_on_call_example_names_who_was_on_call_then(seeded: psycopg.Connection[Any]) -> None:
    rows = seeded.execute(examples()["on-call"]).fetchall()

    expected = sorted((u["name"], u["email"]) for u in pagerduty_data.on_call_users(1, rotation=0))
    assert rows == expected


def test_lost_admin_example_finds_the_version_that_demoted_the_user(
    seeded: psycopg.Connection[Any],
) -> None:
    before = {u["login"]: u["permissions"]["admin"] for u in github_data.collaborators("", 3, 0)}
    after = {u["login"]: u["permissions"]["admin"] for u in github_data.collaborators("", 3, 1)}
    assert before["ken-116"]
    assert not after["ken-116"]

    rows = seeded.execute(examples()["lost-admin"]).fetchall()

    assert rows == [(datetime(2026, 10, 15, tzinfo=UTC),)]


def test_membership_example_lists_who_joined_and_left(seeded: psycopg.Connection[Any]) -> None:
    before = {u["login"] for u in github_data.collaborators("", 3, 0)}
    after = {u["login"] for u in github_data.collaborators("", 3, 1)}

    rows = seeded.execute(examples()["membership-changes"]).fetchall()

    at = datetime(2026, 10, 15, tzinfo=UTC)
    expected = [(2, at, "joined", login) for login in sorted(after - before)]
    expected += [(2, at, "left", login) for login in sorted(before - after)]
    assert rows == expected


def test_issues_by_status_example_counts_the_latest_version(
    seeded: psycopg.Connection[Any],
) -> None:
    rows = seeded.execute(examples()["issues-by-status"]).fetchall()

    issues = jira_data.issues("", jira_data.project_number("PRJ3") or 0, 0)
    expected = Counter(issue["fields"]["status"]["name"] for issue in issues)
    assert dict(rows) == dict(expected)
    assert sum(n for _, n in rows) == 130


def test_refresh_health_example_sums_runs_per_dataset(seeded: psycopg.Connection[Any]) -> None:
    rows = {r[0]: r[1:] for r in seeded.execute(examples()["refresh-health"]).fetchall()}

    assert rows["pagerduty.schedule_users"] == (2, 2, 0, 0)
    assert rows["github.repo_collaborators"][0] == 2
    assert rows["jira.project_issues"][2] == 0


def test_latest_snapshots_view_shows_freshness_per_key(seeded: psycopg.Connection[Any]) -> None:
    rows = seeded.execute(
        "SELECT dataset, key, version, stale, last_outcome FROM latest_snapshots ORDER BY dataset"
    ).fetchall()

    assert rows == [
        ("github.repo_collaborators", "acme/repo-03", 2, True, "changed"),  # moved back in time
        ("jira.project_issues", "PRJ3", 1, False, "changed"),
        ("pagerduty.schedule_users", "PSCH001", 2, True, "changed"),
    ]


def test_retention_prunes_superseded_versions_and_old_runs_but_keeps_the_latest(
    tmp_path: Path,
    start_gateway: Callable[[JobsConfig], Gateway],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text(
        f"""
[service]
maintenance_interval = "300ms"
keep_runs = "1d"
[providers.pagerduty]
base_url = "{simulator.url}/pagerduty"
token = "sim-pagerduty-token"
[datasets."pagerduty.schedule_users"]
min_refresh_interval = "1ms"
keep = "30d"
keys = ["PSCH001", "PSCH002"]
"""
    )
    gateway = start_gateway(load_jobs(path, env={}))
    wait_for(lambda: runs_with_outcome(db, "changed") == 2)
    for _ in range(2):
        time.sleep(0.05)  # past min_refresh_interval (1 ms) since the last refresh
        simulator.rotate_schedule("PSCH001")
        answer = gateway.http.post(
            "/api/v1/refresh/pagerduty.schedule_users/PSCH001", params={"wait": 10}
        )
        assert answer.status_code == 200, answer.text
    # PSCH001: v1 and v2 were replaced long ago, v3 is current; PSCH002 has one old version.
    db.execute(
        "UPDATE snapshots SET fetched_at = now() - interval '100 days' WHERE key = 'PSCH001' AND version < 3"
    )
    db.execute(
        "UPDATE snapshots SET fetched_at = now() - interval '40 days' WHERE key = 'PSCH001' AND version = 3"
    )
    db.execute(
        "UPDATE snapshots SET fetched_at = now() - interval '200 days' WHERE key = 'PSCH002'"
    )
    db.execute(
        "UPDATE refresh_runs SET finished_at = now() - interval '2 days' WHERE key = 'PSCH002'"
    )

    wait_for(
        lambda: (
            db.execute("SELECT count(*) FROM snapshots WHERE key = 'PSCH001'").fetchone() == (1,)
        )
    )
    wait_for(
        lambda: (
            db.execute("SELECT count(*) FROM refresh_runs WHERE key = 'PSCH002'").fetchone() == (0,)
        )
    )

    versions = db.execute("SELECT key, version FROM snapshots ORDER BY key, version").fetchall()
    assert versions == [
        ("PSCH001", 3),
        ("PSCH002", 1),
    ]  # latest versions survive whatever their age
    assert gateway.snapshot("pagerduty.schedule_users", "PSCH002").status_code == 200
    assert db.execute("SELECT count(*) FROM refresh_runs WHERE key = 'PSCH001'").fetchone() == (3,)


def test_schedule_view_shows_both_versions_with_their_time_ranges(
    seeded: psycopg.Connection[Any],
) -> None:
    rows = seeded.execute(
        "SELECT DISTINCT version, valid_from, valid_until FROM pagerduty_schedule_users"
        " WHERE schedule_id = 'PSCH001' ORDER BY version"
    ).fetchall()
    users = seeded.execute(
        "SELECT version, user_id FROM pagerduty_schedule_users WHERE schedule_id = 'PSCH001' ORDER BY version, user_id"
    ).fetchall()

    first, second = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    assert rows == [(1, first, second), (2, second, None)]
    expected = [(1, u["id"]) for u in pagerduty_data.on_call_users(1, 0)]
    expected += [(2, u["id"]) for u in pagerduty_data.on_call_users(1, 1)]
    assert users == sorted(expected)


def test_object_dataset_views_have_one_row_per_version_or_target(
    tmp_path: Path,
    start_gateway: Callable[[JobsConfig], Gateway],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    path = tmp_path / "jobs.toml"
    providers = sim_providers(simulator.url, jira='deployment = "server"')
    path.write_text(
        f"""
{providers}
[datasets."pagerduty.escalation_policy"]
keys = ["PPOL001"]
[datasets."github.repo"]
keys = ["acme/repo-02"]
[datasets."jira.project"]
keys = ["PRJ2"]
"""
    )
    gateway = start_gateway(load_jobs(path, env={}))
    wait_for(lambda: runs_with_outcome(db, "changed") == 3)

    targets = db.execute(
        "SELECT level, target_id FROM pagerduty_escalation_targets ORDER BY level, target_id"
    )
    repos = db.execute("SELECT repo, default_branch, version FROM github_repos").fetchall()
    projects = db.execute("SELECT project, name, version FROM jira_projects").fetchall()

    policy = gateway.snapshot("pagerduty.escalation_policy", "PPOL001").json()["data"]
    expected = sorted(
        (level, target["id"])
        for level, rule in enumerate(policy["escalation_rules"], 1)
        for target in rule["targets"]
    )
    assert targets.fetchall() == expected
    repo = gateway.snapshot("github.repo", "acme/repo-02").json()["data"]
    assert repos == [("acme/repo-02", repo["default_branch"], 1)]
    project = gateway.snapshot("jira.project", "PRJ2").json()["data"]
    assert projects == [("PRJ2", project["name"], 1)]
