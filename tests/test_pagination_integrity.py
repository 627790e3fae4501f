"""A paged fetch is stored only when its pagination ended where it said it would.

A truncated list is worse than none: reconcilers act on it and remove real people from groups.
Each case makes the simulator's pagination lie (a page announced by GitHub's Link comes back
empty, Jira's total is not reached or isLast=false comes without a nextPageToken, PagerDuty
says more: true and then sends nothing) under a running gateway: the forced refresh fails with
a 502 naming the truncation, no version is added, the run log records the failure, and the
last good snapshot keeps being served with `last_error` set; with no earlier snapshot, nothing
is stored and the read answers 503.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from helpers import Gateway, Simulator, sim_providers
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig, load_jobs

NOTHING_STORED = "the list may be truncated, nothing stored"


@dataclass(frozen=True)
class Lie:
    dataset: str
    key: str
    arrange: Callable[[Simulator], None]
    says: str  # what the error must say was announced against what came
    items: int  # items in the good snapshot
    jira: str = "server"


def _fault(
    provider: str, kind: str, path: str = "", count: int = 20
) -> Callable[[Simulator], None]:
    return lambda sim: sim.add_fault(provider, kind, path=path, count=count)


# Paths are substrings of path+query: "page=2" matches PyGithub's `?page=2&per_page=100` and
# the Link URL the http provider follows verbatim, `?per_page=30&page=2`.
LIES = {
    "GitHub page 2 of 2 announced by Link comes back empty": Lie(
        "github.repo_collaborators",
        "acme/repo-21",
        _fault("github", "truncated", "page=2"),
        "page 2 of 2 announced by Link came back empty after 100 items",
        120,
    ),
    "GitHub Link announces a page past the last": Lie(
        "github.repo_collaborators",
        "acme/repo-21",
        _fault("github", "overstated", "collaborators"),
        "page 2 of 3 came back with 20 items, fewer than per_page 100, though Link announces more",
        120,
    ),
    "Jira Server page at startAt=100 comes back empty under total 130": Lie(
        "jira.project_issues",
        "PRJ3",
        _fault("jira", "truncated", "startAt=100"),
        "page at startAt=100 came back empty though total is 130, after 100 issues",
        130,
    ),
    "Jira Server total is larger than the issues it pages": Lie(
        "jira.project_issues",
        "PRJ3",
        _fault("jira", "overstated", "/search?"),
        "page at startAt=100 came back with 30 of maxResults 100 issues though total is 230,"
        " after 130 issues",
        130,
    ),
    "Jira Cloud page 1 says isLast=false without a nextPageToken": Lie(
        "jira.project_issues",
        "PRJ3",
        _fault("jira", "overstated", "search/jql", count=1),
        "page 1 says isLast=false but carries no nextPageToken, after 100 issues",
        130,
        jira="cloud",
    ),
    "Jira Cloud page 1 comes back empty while not last": Lie(
        "jira.project_issues",
        "PRJ3",
        _fault("jira", "truncated", "search/jql", count=1),
        "page 1 came back empty though isLast=false, after 0 issues",
        130,
        jira="cloud",
    ),
    "PagerDuty schedule users say more: true": Lie(
        "pagerduty.schedule_users",
        "PSCH001",
        _fault("pagerduty", "overstated", "/schedules/PSCH001/users"),
        "the answer says more: true, but this endpoint is not paged, after 2 users",
        2,
    ),
    "PagerDuty users (http offset) say more: true, then send an empty page": Lie(
        "pd_users.all",
        "all",
        _fault("pagerduty", "overstated", "/users?"),
        "page at offset 50 came back empty though more: true, after 50 items",
        50,
    ),
    "PagerDuty users (http offset) page at offset 30 is empty under more: true": Lie(
        "pd_users.all",
        "all",
        _fault("pagerduty", "truncated", "offset=30"),
        "page at offset 30 came back empty though more: true, after 30 items",
        50,
    ),
    "PagerDuty users (http offset) end short of their total": Lie(
        "pd_users.counted",
        "all",
        _fault("pagerduty", "truncated", "offset=40"),
        "the list ended after 40 items though total is 50",
        50,
    ),
    "GitHub collaborators (http link) page 2 announced by Link comes back empty": Lie(
        "gh_raw.collaborators",
        "acme/repo-03",
        _fault("github", "truncated", "page=2"),
        "page 2 of 3 announced by Link came back empty after 30 items",
        75,
    ),
}


@dataclass(frozen=True)
class Tokens:
    reader: dict[str, str]
    operator: dict[str, str]


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    path = tmp_path / "tokens"
    reader = create_token(path, "dashboard", "reader")
    operator = create_token(path, "oncall", "operator")
    return Tokens({"Authorization": f"Bearer {reader}"}, {"Authorization": f"Bearer {operator}"})


@pytest.fixture
def config(tmp_path: Path, simulator: Simulator) -> Callable[[str], JobsConfig]:
    """The paged datasets on the simulator (Jira as `server` or `cloud`), with API tokens."""

    def make(jira: str) -> JobsConfig:
        quick = 'timeout = "2s"\nmax_retries = 1\n'
        email = 'email = "bot@example.com"\n' if jira == "cloud" else ""
        providers = sim_providers(
            simulator.url,
            pagerduty=quick,
            github=quick,
            jira=f'{quick}deployment = "{jira}"\n{email}budget = "50/1s"\n',
        )
        every = 'min_refresh_interval = "1ms"\n'
        path = tmp_path / "jobs.toml"
        path.write_text(
            f"""
[api]
tokens_file = "tokens"

{providers}
[providers.pd_users]
kind = "http"
base_url = "{simulator.url}/pagerduty"
token = "sim-pagerduty-token"
auth_template = "Token token={{token}}"

[providers.gh_raw]
kind = "http"
base_url = "{simulator.url}/github"
token = "sim-github-token"
auth_template = "token {{token}}"

[datasets."pagerduty.schedule_users"]
{every}
[datasets."github.repo_collaborators"]
{every}
[datasets."jira.project_issues"]
{every}
[datasets."pd_users.all"]
url = "/users"
items = "users"
paginate = "offset"
page_size = 10
key_pattern = "all"
ttl = "5m"
{every}
[datasets."pd_users.counted"]
url = "/users"
items = "users"
paginate = "offset"
page_size = 10
params = {{ total = "true" }}
key_pattern = "all"
ttl = "5m"
{every}
[datasets."gh_raw.collaborators"]
url = "/repos/{{key}}/collaborators"
params = {{ per_page = "30" }}
paginate = "link"
ttl = "5m"
{every}
"""
        )
        return load_jobs(path, env={})

    return make


def _stored(db: psycopg.Connection[Any], dataset: str, key: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT version, content_hash, item_count FROM snapshots"
        " WHERE dataset = %s AND key = %s ORDER BY version",
        (dataset, key),
    ).fetchall()


def _summary(response: httpx.Response) -> str:
    """Status, refresh outcome, version and item count (or the error) of an answer."""
    body = response.json()
    if "error" in body:
        return f"{response.status_code} {body['error']}"
    outcome = response.headers.get("X-Refresh-Outcome")
    return f"{response.status_code} {outcome} version {body['version']}: {len(body['data'])} items"


def _last_run(db: psycopg.Connection[Any], dataset: str, key: str) -> tuple[Any, ...]:
    row = db.execute(
        "SELECT outcome, error, snapshot_id FROM refresh_runs"
        " WHERE dataset = %s AND key = %s ORDER BY id DESC LIMIT 1",
        (dataset, key),
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("name", list(LIES))
def test_lying_pagination_fails_the_refresh_and_keeps_the_last_good_snapshot(
    name: str,
    start_gateway: Callable[[JobsConfig], Gateway],
    config: Callable[[str], JobsConfig],
    tokens: Tokens,
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    lie = LIES[name]
    gateway = start_gateway(config(lie.jira))
    path = f"/api/v1/snapshots/{lie.dataset}/{lie.key}"
    good = gateway.http.get(path, headers=tokens.reader)
    assert good.status_code == 200
    assert (good.json()["version"], len(good.json()["data"])) == (1, lie.items)
    stored = _stored(db, lie.dataset, lie.key)

    lie.arrange(simulator)
    refresh = gateway.http.post(f"{path}/refresh", params={"wait": 10}, headers=tokens.operator)
    after = gateway.http.get(path, headers=tokens.reader)

    assert refresh.status_code == 502, _summary(refresh)
    error = refresh.json()["error"]
    assert error["code"] == "upstream_error"
    assert lie.says in error["message"]
    assert NOTHING_STORED in error["message"]
    assert _stored(db, lie.dataset, lie.key) == stored  # no version 2, nothing partial
    outcome, run_error, snapshot_id = _last_run(db, lie.dataset, lie.key)
    assert (outcome, snapshot_id) == ("failed", None)
    assert lie.says in run_error
    assert after.status_code == 200
    assert (after.json()["version"], after.json()["data"]) == (1, good.json()["data"])
    assert after.headers["ETag"] == good.headers["ETag"]
    assert lie.says in after.json()["freshness"]["last_error"]


COLD = [
    "GitHub page 2 of 2 announced by Link comes back empty",
    "Jira Server page at startAt=100 comes back empty under total 130",
    "Jira Cloud page 1 says isLast=false without a nextPageToken",
    "PagerDuty users (http offset) page at offset 30 is empty under more: true",
]


@pytest.mark.parametrize("name", COLD)
def test_lying_pagination_on_a_cold_read_stores_nothing(
    name: str,
    start_gateway: Callable[[JobsConfig], Gateway],
    config: Callable[[str], JobsConfig],
    tokens: Tokens,
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    lie = LIES[name]
    gateway = start_gateway(config(lie.jira))
    lie.arrange(simulator)

    cold = gateway.http.get(f"/api/v1/snapshots/{lie.dataset}/{lie.key}", headers=tokens.reader)

    assert cold.status_code == 503, _summary(cold)
    error = cold.json()["error"]
    assert error["code"] == "unavailable"
    assert lie.says in error["last_error"]
    assert _stored(db, lie.dataset, lie.key) == []
    outcome, run_error, snapshot_id = _last_run(db, lie.dataset, lie.key)
    assert (outcome, snapshot_id) == ("failed", None)
    assert lie.says in run_error
