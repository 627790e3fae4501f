"""Several named instances of a kind, each with its own token, base URL and budget; and a
provider kind defined in the test suite alone, added without touching the server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from directory_kind import DIRECTORY
from helpers import Gateway, Simulator, wait_for
from snapshots.config import JobsConfig, load_jobs
from snapshots.errors import ConfigError
from snapshots.providers.kinds import BUILT_IN
from snapshots.registry import Registry

StartGateway = Callable[[JobsConfig], Gateway]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobs.toml"
    path.write_text(text)
    return path


def _budgets(gateway: Gateway) -> dict[str, Any]:
    """Each provider instance's budget as the active worker published it (None before)."""
    return {p["provider"]: p["budget"] for p in gateway.http.get("/api/v1/providers").json()}


def test_two_pagerduty_accounts_each_spend_their_own_budget_with_their_own_token(
    tmp_path: Path,
    start_gateway: StartGateway,
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    simulator.add_account("pagerduty", "eu", "eu-account-token")
    path = _write(
        tmp_path,
        f"""
[service]
leader_check = "1s"  # 100 ms lost the lock to a 300 ms stall of a loaded CI machine (3 checks idle)
[providers.pagerduty]
base_url = "{simulator.url}/pagerduty"
token = "sim-pagerduty-token"
budget = "100/1h"
[providers.pd-eu]
kind = "pagerduty"
base_url = "{simulator.url}/pagerduty"
token = "eu-account-token"
budget = "7/1h"
[datasets."pagerduty.schedule_users"]
keys = ["PSCH001", "PSCH002"]
[datasets."pd-eu.schedule_users"]
keys = ["PSCH003"]
[datasets."pd-eu.escalation_policy"]
""",
    )
    gateway = start_gateway(load_jobs(path, env={}))

    eu = wait_for(
        lambda: (r := gateway.snapshot("pd-eu.schedule_users", "PSCH003")).status_code == 200 and r
    )
    assert [u["id"] for u in eu.json()["data"]]
    assert gateway.snapshot("pagerduty.schedule_users", "PSCH001").status_code == 200
    # The instance's own bare routes, below /api/v1/<instance>.
    bare = gateway.http.get("/api/v1/pd-eu/schedules/PSCH003/users")
    assert bare.status_code == 200
    assert bare.json() == eu.json()["data"]
    assert gateway.http.get("/api/v1/pd-eu/escalation_policies/PPOL001").status_code == 200

    budgets = wait_for(
        lambda: (b := _budgets(gateway))["pd-eu"] and b["pagerduty"]["granted"] >= 2 and b
    )
    assert budgets["pd-eu"]["limit"] == 7
    assert budgets["pagerduty"]["limit"] == 100
    assert budgets["pd-eu"]["granted"] == 2  # PSCH003 and PPOL001, nothing of the other account
    assert budgets["pagerduty"]["granted"] == 2
    accounts = simulator.counters()["pagerduty"]["by_account"]
    assert accounts == {"eu": 2, "main": 2}
    datasets = {d["dataset"]: d for d in gateway.http.get("/api/v1/datasets").json()}
    assert datasets["pd-eu.schedule_users"]["provider"] == "pd-eu"
    # The analyst views cover every instance of the kind and say which one.
    rows = db.execute(
        "SELECT provider, schedule_id FROM pagerduty_schedule_users GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    assert rows == [("pagerduty", "PSCH001"), ("pagerduty", "PSCH002"), ("pd-eu", "PSCH003")]
    targets = db.execute("SELECT DISTINCT provider FROM pagerduty_escalation_targets").fetchall()
    assert targets == [("pd-eu",)]


def test_an_upstream_error_names_the_instance_whose_account_failed(
    tmp_path: Path, start_gateway: StartGateway, simulator: Simulator
) -> None:
    """With two PagerDuty accounts, "pagerduty answered 401" does not say which token to fix."""
    path = _write(
        tmp_path,
        f"""
[providers.pagerduty]
base_url = "{simulator.url}/pagerduty"
token = "sim-pagerduty-token"
[providers.pd-eu]
kind = "pagerduty"
base_url = "{simulator.url}/pagerduty"
token = "revoked-token"
[datasets."pagerduty.schedule_users"]
[datasets."pd-eu.schedule_users"]
""",
    )
    gateway = start_gateway(load_jobs(path, env={}))

    failed = gateway.snapshot("pd-eu.schedule_users", "PSCH001")

    assert failed.status_code == 503
    assert failed.json()["error"]["last_error"].startswith("pd-eu: pagerduty answered 401")
    assert gateway.snapshot("pagerduty.schedule_users", "PSCH001").status_code == 200


def test_two_github_instances_on_one_host_keep_their_own_gates(
    tmp_path: Path, start_gateway: StartGateway, simulator: Simulator
) -> None:
    """PyGithub's transport hook is process-wide; each instance must still use its own."""
    simulator.add_account("github", "enterprise", "ghe-token")
    path = _write(
        tmp_path,
        f"""
[providers.github]
base_url = "{simulator.url}/github"
token = "sim-github-token"
budget = "100/1h"
[providers.ghe]
kind = "github"
base_url = "{simulator.url}/github"
token = "ghe-token"
budget = "50/1h"
page_size = 50
[datasets."github.repo"]
keys = ["acme/repo-01", "acme/repo-02"]
[datasets."ghe.repo_collaborators"]
keys = ["acme/repo-03"]
""",
    )
    gateway = start_gateway(load_jobs(path, env={}))

    collaborators = wait_for(
        lambda: (
            (r := gateway.snapshot("ghe.repo_collaborators", "acme/repo-03")).status_code == 200
            and r
        )
    )
    assert len(collaborators.json()["data"]) == 75
    wait_for(lambda: gateway.snapshot("github.repo", "acme/repo-02").status_code == 200)
    budgets = wait_for(lambda: (b := _budgets(gateway))["ghe"] and b["github"] and b)
    assert budgets["ghe"]["granted"] == 2  # 75 collaborators at 50 a page
    assert budgets["github"]["granted"] == 2  # two repositories
    assert simulator.counters()["github"]["by_account"] == {"enterprise": 2, "main": 2}


def test_a_kind_from_the_test_suite_serves_its_dataset_and_routes(
    tmp_path: Path, start_gateway: StartGateway, simulator: Simulator
) -> None:
    path = _write(
        tmp_path,
        f"""
[providers.directory]
base_url = "{simulator.url}/pagerduty"
token = "sim-pagerduty-token"
page_size = 20
[datasets."directory.users"]
keys = ["all"]
""",
    )
    config = load_jobs(path, env={}, kinds=(*BUILT_IN, DIRECTORY))
    gateway = start_gateway(config)

    users = wait_for(
        lambda: (r := gateway.snapshot("directory.users", "all")).status_code == 200 and r
    )
    assert len(users.json()["data"]) == 50
    assert simulator.requests("pagerduty") == 3  # 50 users at 20 a page
    bare = gateway.http.get("/api/v1/directory/users")
    assert bare.status_code == 200
    assert bare.json() == users.json()["data"]
    assert gateway.snapshot("directory.users", "everyone").status_code == 400
    spec = gateway.http.get("/schema/openapi.json").json()
    assert "/api/v1/directory/users" in spec["paths"]
    # The pagerduty, github and jira instances exist, but none of their datasets is configured.
    unconfigured = ("/api/v1/pagerduty/", "/api/v1/github/", "/api/v1/jira/")
    assert [p for p in spec["paths"] if p.startswith(unconfigured)] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The kind is not installed in this process.
        ('[providers.directory]\nbase_url = "https://d.example"\n', "unknown provider 'directory'"),
        (
            '[providers.directory]\nbase_url = "https://d.example"\nkind = "directory"\npage_size = 500\n',
            "providers.directory.page_size: must be a whole number from 1 to 100",
        ),
        (
            '[providers.pd-eu]\nkind = "pagerduty"\npage_size = 5\n',
            "providers.pd-eu.page_size: not a setting of pd-eu",
        ),
        ('[providers.pd-eu]\nkind = "pagerdooty"\n', "providers.pd-eu.kind: must be one of http"),
        ('[providers.PD]\nkind = "pagerduty"\n', "instance names are lower-case"),
        ('[providers.github]\nkind = "pagerduty"\n', "github is the name of a kind"),
        ('[datasets."pd-eu.schedule_users"]\n', "unknown provider 'pd-eu'"),
        (
            '[datasets."pagerduty.schedule_users"]\nkey_pattern = ".*"\n',
            "key_pattern: only for user-defined datasets",
        ),
        (
            '[providers.pd-eu]\nkind = "pagerduty"\n[providers.pd_eu]\nkind = "pagerduty"\n',
            "providers.pd_eu: clashes with providers.pd-eu: both would use the environment"
            " variables SNAPSHOTS_PD_EU_*; rename one of them",
        ),
        (
            '[providers.gh-x]\nkind = "github"\n[providers.gh_x]\nkind = "http"\n'
            'base_url = "https://x.example"\n',
            "providers.gh_x: clashes with providers.gh-x",
        ),
        (
            '[providers.x]\nkind = "pagerduty"\n[providers.x_schedule]\nkind = "directory"\n'
            'base_url = "https://d.example"\n',
            "providers.x_schedule: clashes with providers.x: both would use the OpenAPI"
            " operation id x_schedule_users",
        ),
        (
            '[providers.snapshots]\nkind = "pagerduty"\n',
            "'snapshots' is reserved for the API's own routes",
        ),
    ],
)
def test_instance_mistakes_fail_with_the_file_key_and_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    kinds = (*BUILT_IN, DIRECTORY) if '"directory"' in text else BUILT_IN

    with pytest.raises(ConfigError) as raised:
        Registry.from_config(load_jobs(path, env={}, kinds=kinds))

    assert raised.value.message.startswith(str(path))
    assert expected in raised.value.message


def test_an_instance_reads_its_token_from_its_own_environment_variable(tmp_path: Path) -> None:
    path = _write(
        tmp_path, '[providers.pd-eu]\nkind = "pagerduty"\n[datasets."pd-eu.schedule_users"]\n'
    )

    disabled = Registry.from_config(load_jobs(path, env={})).dataset("pd-eu.schedule_users")
    enabled = Registry.from_config(load_jobs(path, env={"SNAPSHOTS_PD_EU_TOKEN": "t"})).dataset(
        "pd-eu.schedule_users"
    )

    assert "SNAPSHOTS_PD_EU_TOKEN" in (disabled.provider.disabled_reason or "")
    assert enabled.enabled
    assert enabled.provider.settings.base_url == "https://api.pagerduty.com"
