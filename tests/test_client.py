"""The Python client against a running gateway on the simulator: every method, sync and async,
the 304 path, retries on 503 with Retry-After, and each exception."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from helpers import Gateway, Simulator, wait_for
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig
from snapshots_client import (
    AsyncSnapshotsClient,
    BadRequest,
    ClientConfigError,
    DatasetDisabled,
    EscalationPolicy,
    Forbidden,
    GitHubRepo,
    JiraProject,
    NotFound,
    RefreshStarted,
    Snapshot,
    SnapshotsClient,
    Unauthorized,
    Unavailable,
)

StartGateway = Callable[[JobsConfig], Gateway]
MakeConfig = Callable[..., JobsConfig]
PD = "pagerduty.schedule_users"


@pytest.fixture
def gateway(start_gateway: StartGateway, every_dataset_config: MakeConfig) -> Gateway:
    return start_gateway(every_dataset_config())


def _not_modified_reads(gateway: Gateway, dataset: str) -> float:
    """The gateway's own count of 304 answers for `dataset` (from /metrics)."""
    for line in gateway.http.get("/metrics").text.splitlines():
        labels = (f'dataset="{dataset}"', 'result="not_modified"')
        if line.startswith("snapshots_reads_total{") and all(label in line for label in labels):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_typed_methods_return_each_builtin_dataset(gateway: Gateway) -> None:
    with SnapshotsClient(gateway.server.url) as client:
        users = client.pagerduty_schedule_users("PSCH001")
        policy = client.pagerduty_escalation_policy("PPOL002")
        collaborators = client.github_repo_collaborators("acme/repo-01")
        repo = client.github_repo("acme/repo-01")
        issues = client.jira_project_issues("PRJ1")
        project = client.jira_project("PRJ1")

        raw_users = client.get(PD, "PSCH001").data
    assert [u.id for u in users] == [u["id"] for u in raw_users]
    assert all(u.email and u.name for u in users)
    assert isinstance(policy, EscalationPolicy)
    assert policy.id == "PPOL002"
    assert policy.escalation_rules
    assert policy.escalation_rules[0].targets
    assert collaborators
    assert {c.role_name for c in collaborators} <= {
        "admin",
        "maintain",
        "write",
        "triage",
        "read",
    }
    assert all(c.permissions.pull for c in collaborators)
    assert isinstance(repo, GitHubRepo)
    assert repo.full_name == "acme/repo-01"
    assert issues
    assert all(i.key.startswith("PRJ1-") for i in issues)
    assert all(i.fields.status is not None for i in issues)
    assert isinstance(project, JiraProject)
    assert project.key == "PRJ1"
    assert project.lead is not None
    assert project.lead.display_name


def test_get_history_refresh_run_and_max_age(
    start_gateway: StartGateway, every_dataset_config: MakeConfig, simulator: Simulator
) -> None:
    gateway = start_gateway(every_dataset_config(service='read_wait = "10s"'))
    with SnapshotsClient(gateway.server.url) as client:
        first = client.get(PD, "PSCH001")
        assert first.version == 1
        assert first.freshness.ttl_seconds > 0
        assert not first.freshness.stale

        simulator.rotate_schedule("PSCH001")
        refreshed = client.refresh(PD, "PSCH001", wait=10)
        assert isinstance(refreshed, Snapshot)
        assert refreshed.version == 2
        assert refreshed.data != first.data

        time.sleep(0.05)  # past min_refresh_interval (1 ms) since that refresh
        started = client.refresh(PD, "PSCH001")
        assert isinstance(started, RefreshStarted)
        assert started.status in ("started", "joined")
        run = wait_for(lambda: (r := client.run(started.run_id)).finished and r)
        assert run.status == "unchanged"
        assert run.dataset == PD

        page = client.history(PD, "PSCH001", limit=1, include_data=True)
        assert [v.version for v in page.versions] == [2]
        assert page.versions[0].data == refreshed.data
        assert page.next_before_version == 2
        older = client.history(PD, "PSCH001", before_version=page.next_before_version)
        assert [v.version for v in older.versions] == [1]
        assert older.next_before_version is None

        keys = client.refresh_dataset("pagerduty.escalation_policy")
        assert keys == []  # nothing registered there yet
        client.pagerduty_escalation_policy("PPOL001")
        time.sleep(0.05)  # past min_refresh_interval (1 ms) since that read's fetch
        [policy_refresh] = client.refresh_dataset("pagerduty.escalation_policy")
        assert policy_refresh.key == "PPOL001"
        policy_run = policy_refresh.run_id
        assert policy_run is not None
        wait_for(lambda: client.run(policy_run).finished)

        before = simulator.requests()
        time.sleep(0.05)
        client.get(PD, "PSCH001", max_age=0.01)  # older than that: the gateway refreshes first
        assert simulator.requests() == before + 1


async def test_async_client_has_every_method(
    start_gateway: StartGateway, every_dataset_config: MakeConfig, simulator: Simulator
) -> None:
    gateway = start_gateway(every_dataset_config())
    async with AsyncSnapshotsClient(gateway.server.url) as client:
        users = await client.pagerduty_schedule_users("PSCH001")
        policy = await client.pagerduty_escalation_policy("PPOL003")
        collaborators = await client.github_repo_collaborators("acme/repo-02")
        repo = await client.github_repo("acme/repo-02")
        issues = await client.jira_project_issues("PRJ2")
        project = await client.jira_project("PRJ2")
        snapshot = await client.get(PD, "PSCH001")
        simulator.rotate_schedule("PSCH001")
        refreshed = await client.refresh(PD, "PSCH001", wait=10)
        await asyncio.sleep(0.05)  # past min_refresh_interval (1 ms), even on a fast machine
        started = await client.refresh(PD, "PSCH001")
        run = await client.run(started.run_id)
        history = await client.history(PD, "PSCH001")
        again = await client.get(PD, "PSCH001", max_age=3600)
        keys = await client.refresh_dataset("github.repo")
    assert [u.id for u in users] == [u["id"] for u in snapshot.data]
    assert policy.id == "PPOL003"
    assert collaborators
    assert repo.full_name == "acme/repo-02"
    assert issues[0].key.startswith("PRJ2-")
    assert project.key == "PRJ2"
    assert refreshed.version == snapshot.version + 1
    assert run.id == started.run_id
    assert [v.version for v in history.versions] == [2, 1]
    assert again.version == 2
    assert [k.key for k in keys] == ["acme/repo-02"]


def test_unchanged_snapshot_costs_a_304(gateway: Gateway) -> None:
    with SnapshotsClient(gateway.server.url) as client:
        first = client.pagerduty_schedule_users("PSCH001")
        before = _not_modified_reads(gateway, PD)
        second = client.pagerduty_schedule_users("PSCH001")
        snapshot = client.get(PD, "PSCH001")
    assert second == first
    assert _not_modified_reads(gateway, PD) == before + 2
    assert snapshot.version == 1
    assert [u["id"] for u in snapshot.data] == [u.id for u in first]


async def test_async_client_revalidates_with_304(gateway: Gateway) -> None:
    async with AsyncSnapshotsClient(gateway.server.url) as client:
        first = await client.get(PD, "PSCH001")
        before = _not_modified_reads(gateway, PD)
        second = await client.get(PD, "PSCH001")
    assert second.data == first.data
    assert second.version == first.version
    assert _not_modified_reads(gateway, PD) == before + 1


def test_a_503_is_retried_after_its_retry_after(
    start_gateway: StartGateway, every_dataset_config: MakeConfig, simulator: Simulator
) -> None:
    # The first fetch takes 1.5 s; reads wait 0.5 s and answer 503 with Retry-After: 1.
    gateway = start_gateway(every_dataset_config(service='read_wait = "0.5s"'))
    wait_for(lambda: gateway.snapshot(PD, "PSCH001").status_code == 200)
    simulator.set_latency(1.5)

    with (
        SnapshotsClient(gateway.server.url, retries=0) as impatient,
        pytest.raises(Unavailable) as raised,
    ):
        impatient.pagerduty_schedule_users("PSCH002")
    assert raised.value.status == 503
    assert raised.value.retry_after == 1

    with SnapshotsClient(gateway.server.url, retries=3) as client:
        began = time.monotonic()
        users = client.pagerduty_schedule_users("PSCH003")
        took = time.monotonic() - began
    assert users
    assert took >= 1.0
    assert simulator.requests() == 3  # PSCH001, PSCH002 and PSCH003 once each


def test_each_error_becomes_its_exception(
    start_gateway: StartGateway,
    every_dataset_config: MakeConfig,
    simulator: Simulator,
    tmp_path: Path,
) -> None:
    tokens = tmp_path / "tokens"
    reader = create_token(tokens, "bot", "reader")
    config = every_dataset_config(
        api=f'tokens_file = "{tokens}"', service='read_wait = "30s"', without_token=("github",)
    )
    gateway = start_gateway(config)
    url = gateway.server.url
    with SnapshotsClient(url, reader, retries=0) as client:
        with pytest.raises(NotFound, match="unknown_dataset"):
            client.get("pagerduty.nothing", "PSCH001")
        with pytest.raises(NotFound, match="not_found"):
            client.pagerduty_schedule_users("PSCH099")  # the simulator has no such schedule
        with pytest.raises(BadRequest, match="malformed_key"):
            client.pagerduty_schedule_users("not a schedule")
        with pytest.raises(DatasetDisabled, match="token") as disabled:
            client.github_repo("acme/repo-01")
        assert disabled.value.status == 409
        with pytest.raises(Forbidden):
            client.refresh(PD, "PSCH001")

        simulator.add_fault("pagerduty", "error", status=500, count=50)
        with pytest.raises(Unavailable) as cold:
            client.pagerduty_schedule_users("PSCH004")
        assert cold.value.last_error
        assert "500" in cold.value.last_error
        assert cold.value.freshness is None

        simulator.clear_faults("pagerduty")
        client.pagerduty_schedule_users("PSCH005")
        simulator.add_fault("pagerduty", "error", status=500, count=50)
        time.sleep(0.05)
        with pytest.raises(Unavailable) as old:
            client.pagerduty_schedule_users("PSCH005", max_age=0.01)
        assert old.value.last_error
        assert old.value.freshness is not None
        assert old.value.freshness.age_seconds >= 0.01

    for token in ("snp_not-a-token", ""):
        with SnapshotsClient(url, token, retries=0) as stranger, pytest.raises(Unauthorized):
            stranger.get(PD, "PSCH001")


def test_an_unreachable_gateway_is_retried_then_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with (
        SnapshotsClient(f"http://127.0.0.1:{port}", retries=2, backoff=0.01) as client,
        pytest.raises(Unavailable, match="cannot reach the gateway") as raised,
    ):
        client.get(PD, "PSCH001")
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


def test_settings_come_from_the_environment_and_the_token_stays_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SNAPSHOTS_URL", raising=False)
    with pytest.raises(ClientConfigError, match="SNAPSHOTS_URL"):
        SnapshotsClient()
    with pytest.raises(ClientConfigError, match="http://"):
        SnapshotsClient("snapshots:8000")
    monkeypatch.setenv("SNAPSHOTS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SNAPSHOTS_TOKEN", "snp_very-secret-token")
    with SnapshotsClient() as client:
        assert "127.0.0.1:9" in repr(client)
        assert "secret" not in repr(client)
