"""Every built-in and user-defined dataset through the real client libraries and the shared budget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import Gateway, Simulator, runs_with_outcome, sim_providers, wait_for
from snapshots.config import JobsConfig, load_jobs

StartGateway = Callable[[JobsConfig], Gateway]


@pytest.fixture
def config(tmp_path: Path, simulator: Simulator) -> Callable[..., JobsConfig]:
    """jobs.toml with all three providers on the simulator, plus the given datasets."""

    def make(
        datasets: str,
        *,
        jira_deployment: str = "server",
        jira_budget: str = "100/1s",
        gh_budget: str = "100/1s",
        pd_budget: str = "100/1s",
        gh_extra: str = "",
        jira_extra: str = "",
        service: str = "",
    ) -> JobsConfig:
        text = service + sim_providers(
            simulator.url,
            pagerduty=f'budget = "{pd_budget}"',
            github=f'budget = "{gh_budget}"\n{gh_extra}',
            jira=f'deployment = "{jira_deployment}"\n{jira_extra}\nbudget = "{jira_budget}"\n'
            'timeout = "2s"\nmax_throttle_wait = "5s"',
        )
        path = tmp_path / "jobs.toml"
        path.write_text(text + datasets)
        return load_jobs(path, env={})

    return make


def _runs(db: psycopg.Connection[Any], dataset: str, key: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT outcome, upstream_requests, error, finished_at - started_at FROM refresh_runs"
        " WHERE dataset = %s AND key = %s ORDER BY id",
        (dataset, key),
    ).fetchall()


def _fault(simulator: Simulator, provider: str, **fault: Any) -> None:
    simulator.http.post(f"/_sim/faults/{provider}", json=fault).raise_for_status()


def test_github_collaborators_are_stored_from_every_page(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(
        config('[datasets."github.repo_collaborators"]\n', gh_extra="page_size = 20")
    )

    body = gateway.snapshot("github.repo_collaborators", "acme/repo-03").json()

    logins = [user["login"] for user in body["data"]]
    assert len(logins) == 75 == len(set(logins))
    assert all("permissions" in user and "role_name" in user for user in body["data"])
    # 4 pages of 20, each one upstream request and one token; no per-user completion requests
    assert simulator.requests("github") == 4
    assert _runs(db, "github.repo_collaborators", "acme/repo-03")[0][1] == 4


def test_github_repo_is_stored(
    start_gateway: StartGateway, config: Callable[..., JobsConfig]
) -> None:
    gateway = start_gateway(config('[datasets."github.repo"]\n'))

    body = gateway.snapshot("github.repo", "acme/repo-01").json()

    assert body["data"]["full_name"] == "acme/repo-01"
    assert body["freshness"]["ttl_seconds"] == 3600


def test_github_user_org_and_every_page_of_org_members_are_stored(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    tables = "".join(f'[datasets."github.{name}"]\n' for name in ("user", "org", "org_members"))
    gateway = start_gateway(config(tables, gh_extra="page_size = 50"))

    user = gateway.snapshot("github.user", "mona-041").json()["data"]
    org = gateway.snapshot("github.org", "acme").json()["data"]
    members = gateway.snapshot("github.org_members", "acme").json()["data"]

    assert (user["login"], user["name"], user["type"]) == ("mona-041", "Mona 041", "User")
    assert (org["login"], org["url"]) == ("acme", f"{simulator.url}/github/orgs/acme")
    logins = [member["login"] for member in members]
    assert len(logins) == 198 == len(set(logins))
    assert simulator.requests("github") == 1 + 1 + 4  # user, org, four pages of 50
    assert _runs(db, "github.org_members", "acme")[0][1] == 4
    assert gateway.snapshot("github.org", "no_such/org").status_code == 400


def test_github_org_members_ending_before_the_announced_last_page_are_not_stored(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(config('[datasets."github.org_members"]\n', gh_extra="page_size = 50"))
    _fault(simulator, "github", kind="overstated", path="orgs/acme/members", count=20)

    refused = gateway.snapshot("github.org_members", "acme")

    assert refused.status_code == 503  # a cold miss with no good version to fall back on
    assert "page 4 of 5 came back with 48 items, fewer than per_page 50" in refused.text
    assert "the list may be truncated, nothing stored" in refused.json()["error"]["message"]
    assert db.execute(
        "SELECT count(*) FROM snapshots WHERE dataset = 'github.org_members'"
    ).fetchone() == (0,)


def test_a_payload_not_matching_the_dataset_schema_is_not_stored(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    """GitHub answering a repository as `{}` (no full_name) must not become version 2."""
    datasets = '[datasets."github.repo"]\nmin_refresh_interval = "1ms"\nkeys = ["acme/repo-01"]\n'
    gateway = start_gateway(config(datasets))
    wait_for(lambda: gateway.snapshot("github.repo", "acme/repo-01").status_code == 200)
    simulator.mutate("github", "acme/repo-01")
    _fault(simulator, "github", kind="empty", path="repos/acme/repo-01")

    refreshed = gateway.http.post("/api/v1/refresh/github.repo/acme/repo-01", params={"wait": 10})

    assert refreshed.status_code == 502
    assert "does not match the expected shape" in refreshed.json()["error"]["message"]
    latest = gateway.snapshot("github.repo", "acme/repo-01").json()
    assert latest["version"] == 1
    assert latest["data"]["full_name"] == "acme/repo-01"
    assert db.execute(
        "SELECT count(*) FROM snapshots WHERE dataset = 'github.repo'"
    ).fetchone() == (1,)


@pytest.mark.parametrize("deployment", ["server", "cloud"])
def test_jira_project_issues_are_stored_from_every_page(
    deployment: str,
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    extra = 'email = "bot@example.com"\n' if deployment == "cloud" else ""
    datasets = '[datasets."jira.project_issues"]\nfields = ["summary", "status", "assignee"]\n'
    gateway = start_gateway(config(datasets, jira_deployment=deployment, jira_extra=extra))

    body = gateway.snapshot("jira.project_issues", "PRJ3").json()

    keys = [issue["key"] for issue in body["data"]]
    assert len(keys) == 130 == len(set(keys))
    assert all(k.startswith("PRJ3-") for k in keys)
    assert set(body["data"][0]["fields"]) <= {"summary", "status", "assignee"}
    runs = _runs(db, "jira.project_issues", "PRJ3")
    assert runs[0][1] == simulator.requests("jira") >= 2  # every page took a token


def test_jira_project_and_pagerduty_escalation_policy_are_stored(
    start_gateway: StartGateway, config: Callable[..., JobsConfig]
) -> None:
    gateway = start_gateway(
        config('[datasets."jira.project"]\n[datasets."pagerduty.escalation_policy"]\n')
    )

    project = gateway.snapshot("jira.project", "PRJ2").json()
    policy = gateway.snapshot("pagerduty.escalation_policy", "PPOL001").json()

    assert project["data"]["key"] == "PRJ2"
    assert policy["data"]["id"] == "PPOL001"
    assert policy["data"]["escalation_rules"]


@pytest.mark.parametrize(
    ("dataset", "key", "example"),
    [
        ("github.repo", "no-slash", "acme/repo-01"),
        ("jira.project", "lower", "PRJ1"),
        ("pagerduty.escalation_policy", "policy-1", "PABC123"),
    ],
)
def test_malformed_keys_are_refused_with_the_expected_format(
    dataset: str,
    key: str,
    example: str,
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
) -> None:
    gateway = start_gateway(config(f'[datasets."{dataset}"]\n'))

    response = gateway.snapshot(dataset, key)

    assert response.status_code == 400
    assert example in response.json()["error"]["message"]
    assert simulator.requests(dataset.split(".")[0]) == 0


def test_upstream_404_is_remembered_for_the_negative_ttl(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], simulator: Simulator
) -> None:
    gateway = start_gateway(config('[datasets."github.repo"]\nnegative_ttl = "1h"\n'))

    first = gateway.snapshot("github.repo", "acme/missing")
    second = gateway.snapshot("github.repo", "acme/missing")

    assert first.status_code == second.status_code == 404
    assert simulator.requests("github") == 1


def test_throttle_storm_pauses_the_provider_and_the_refresh_completes_after_the_reset(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(config('[datasets."jira.project"]\n'))
    _fault(simulator, "jira", kind="throttle", count=2, retry_after="1")

    response = gateway.snapshot("jira.project", "PRJ1")

    assert response.status_code == 200
    outcome, requests, _, duration = _runs(db, "jira.project", "PRJ1")[0]
    assert (outcome, requests) == ("changed", 3)
    assert duration.total_seconds() >= 1.9  # it waited out both announced resets
    assert simulator.counters()["jira"]["by_status"] == {"429": 2, "200": 1}


def test_retry_after_zero_backs_off_instead_of_spinning(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(config('[datasets."jira.project"]\n'))
    _fault(simulator, "jira", kind="throttle", count=2, retry_after="0")

    response = gateway.snapshot("jira.project", "PRJ1")

    assert response.status_code == 200
    _, requests, _, duration = _runs(db, "jira.project", "PRJ1")[0]
    assert requests == 3
    assert duration.total_seconds() >= 2.9  # backoff of 1 s, then 2 s: no hot loop


def test_transient_5xx_is_retried_and_4xx_is_not(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(config('[datasets."github.repo"]\n'))
    _fault(simulator, "github", kind="error", status=502, count=1)

    recovered = gateway.snapshot("github.repo", "acme/repo-02")
    missing = gateway.snapshot("github.repo", "acme/absent")

    assert recovered.status_code == 200
    assert missing.status_code == 404
    assert [r[:2] for r in _runs(db, "github.repo", "acme/repo-02")] == [("changed", 2)]
    assert [r[:2] for r in _runs(db, "github.repo", "acme/absent")] == [("failed", 1)]


def test_timeouts_are_bounded_and_recorded(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(config('[datasets."jira.project"]\n'))
    _fault(simulator, "jira", kind="timeout", seconds=4, count=10)

    response = gateway.snapshot("jira.project", "PRJ4")

    assert response.status_code == 503
    wait_for(lambda: runs_with_outcome(db, "failed") == 1, timeout=30)
    outcome, requests, error, _ = _runs(db, "jira.project", "PRJ4")[0]
    assert outcome == "failed"
    assert requests == 4  # the first try and three retries, each with a 2 s timeout
    assert "Timeout" in error


def test_fifty_jira_keys_due_at_once_never_exceed_the_upstream_limit(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    simulator.http.put(
        "/_sim/limits/jira", json={"requests": 5, "period_seconds": 1.0}
    ).raise_for_status()
    keys = [f"PRJ{n}" for n in range(1, 51)]
    key_list = ", ".join(f'"{k}"' for k in keys)
    start_gateway(config(f'[datasets."jira.project"]\nkeys = [{key_list}]\n', jira_budget="5/1s"))

    wait_for(lambda: runs_with_outcome(db, "changed") == 50, timeout=120)

    counters = simulator.counters()["jira"]
    assert counters["violations"] == 0
    assert counters["requests"] == 50


def test_pagerduty_and_github_budgets_are_separate_and_shared_by_datasets(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], simulator: Simulator
) -> None:
    gateway = start_gateway(
        config(
            '[datasets."github.repo"]\n[datasets."github.repo_collaborators"]\n[datasets."pagerduty.schedule_users"]\n'
        )
    )

    gateway.snapshot("github.repo", "acme/repo-01")
    gateway.snapshot("github.repo_collaborators", "acme/repo-01")
    gateway.snapshot("pagerduty.schedule_users", "PSCH001")
    budgets = {b["provider"]: b for b in gateway.http.get("/api/v1/providers").json()}

    assert budgets["github"]["budget"]["granted"] == simulator.requests("github") == 2
    assert budgets["pagerduty"]["budget"]["granted"] == simulator.requests("pagerduty") == 1
    assert budgets["jira"]["budget"]["granted"] == 0


def test_user_defined_http_dataset_follows_offset_pagination_through_the_budget(
    tmp_path: Path, start_gateway: StartGateway, simulator: Simulator
) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text(
        f"""
[providers.pd_users]
kind = "http"
base_url = "{simulator.url}/pagerduty"
token = "sim-pagerduty-token"
auth_template = "Token token={{token}}"
budget = "100/1s"

[datasets."pd_users.all"]
url = "/users"
items = "users"
paginate = "offset"
page_size = 20
key_pattern = "all"
ttl = "5m"
"""
    )
    gateway = start_gateway(load_jobs(path, env={}))

    body = gateway.snapshot("pd_users.all", "all").json()

    assert len(body["data"]) == 50
    assert simulator.requests("pagerduty") == 3  # offsets 0, 20, 40


def test_user_defined_http_dataset_follows_link_headers(
    tmp_path: Path, start_gateway: StartGateway, simulator: Simulator
) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text(
        f"""
[providers.gh_raw]
kind = "http"
base_url = "{simulator.url}/github"
token = "sim-github-token"
auth_template = "token {{token}}"

[datasets."gh_raw.collaborators"]
url = "/repos/{{key}}/collaborators"
params = {{ per_page = "30" }}
paginate = "link"
ttl = "5m"
"""
    )
    gateway = start_gateway(load_jobs(path, env={}))

    body = gateway.snapshot("gh_raw.collaborators", "acme/repo-03").json()

    assert len(body["data"]) == 75
    assert simulator.requests("github") == 3


def test_user_defined_fetch_function_gets_the_provider_client(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], simulator: Simulator
) -> None:
    datasets = (
        '[datasets."github.open_issues"]\nfetch = "user_fetch:open_issue_count"\nttl = "5m"\n'
    )
    gateway = start_gateway(config(datasets))

    body = gateway.snapshot("github.open_issues", "acme/repo-02").json()

    assert body["data"]["repo"] == "acme/repo-02"
    assert isinstance(body["data"]["open_issues"], int)
    assert simulator.requests("github") == 1
