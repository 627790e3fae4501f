"""The testing kit: the pytest fixtures serve canned snapshots over HTTP to the real client,
with stale and error cases, the 304 path and the retry on 503; and the entry point works in
another project's test run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from snapshots_client import (
    AsyncSnapshotsClient,
    DatasetDisabled,
    Forbidden,
    NotFound,
    RefreshStarted,
    SnapshotsClient,
    Unauthorized,
    Unavailable,
)
from snapshots_client.testing import FakeGateway

pytest_plugins = ["pytester"]  # the kit is tested as another project would use it

PD = "pagerduty.schedule_users"
USERS = [{"id": "PU001", "type": "user", "name": "Ada Lovelace", "email": "ada@example.com"}]


def test_canned_snapshot_reaches_the_typed_client_over_http(
    snapshots_gateway: FakeGateway, snapshots_client: SnapshotsClient
) -> None:
    snapshots_gateway.add(PD, "PSCH001", USERS)

    users = snapshots_client.pagerduty_schedule_users("PSCH001")
    snapshot = snapshots_client.get(PD, "PSCH001")

    assert [(u.id, u.name, u.email) for u in users] == [
        ("PU001", "Ada Lovelace", "ada@example.com")
    ]
    assert snapshot.data == USERS
    assert snapshot.version == 1
    assert not snapshot.freshness.stale
    assert snapshot.freshness.last_error is None
    assert snapshots_gateway.url is not None
    assert snapshots_gateway.url.startswith("http://127.0.0.1")


def test_the_environment_points_a_default_client_at_the_fake(
    snapshots_gateway: FakeGateway,
) -> None:
    snapshots_gateway.add("jira.project", "PRJ1", {"id": "10001", "key": "PRJ1", "name": "One"})
    with SnapshotsClient() as client:  # SNAPSHOTS_URL, as an integration would build it
        project = client.jira_project("PRJ1")
    assert (project.key, project.name) == ("PRJ1", "One")


def test_stale_snapshot_and_its_last_error(
    snapshots_gateway: FakeGateway, snapshots_client: SnapshotsClient
) -> None:
    snapshots_gateway.add(PD, "PSCH002", USERS, ttl=60, stale=True, last_error="pagerduty 503")

    snapshot = snapshots_client.get(PD, "PSCH002")

    assert snapshot.freshness.stale
    assert snapshot.freshness.age_seconds > 60
    assert snapshot.freshness.last_error == "pagerduty 503"


def test_an_unchanged_snapshot_is_revalidated_with_304(
    snapshots_gateway: FakeGateway, snapshots_client: SnapshotsClient
) -> None:
    snapshots_gateway.add(PD, "PSCH001", USERS)
    path = f"/api/v1/snapshots/{PD}/PSCH001"

    first = snapshots_client.get(PD, "PSCH001")
    second = snapshots_client.get(PD, "PSCH001")
    snapshots_gateway.add(PD, "PSCH001", [*USERS, {"id": "PU002", "type": "user"}])
    third = snapshots_client.get(PD, "PSCH001")

    assert second.data == first.data
    assert [r.status for r in snapshots_gateway.requests if r.path == path] == [200, 304, 200]
    assert third.version == 2
    assert len(third.data) == 2


def test_each_error_kind_raises_its_exception(
    snapshots_gateway: FakeGateway, snapshots_client: SnapshotsClient
) -> None:
    snapshots_gateway.fail("github.repo", "acme/x", "disabled", "github needs a token")
    snapshots_gateway.fail(PD, "PSCH404", "not_found")
    snapshots_gateway.fail(PD, "PSCH503", "unavailable", retry_after=120, last_error="timeout")

    with pytest.raises(DatasetDisabled, match="github needs a token"):
        snapshots_client.github_repo("acme/x")
    with pytest.raises(NotFound):
        snapshots_client.pagerduty_schedule_users("PSCH404")
    with pytest.raises(NotFound, match="unknown_dataset"):
        snapshots_client.get("nothing.here", "k")
    with pytest.raises(Unavailable) as raised:  # Retry-After above max_retry_wait: no retry
        snapshots_client.pagerduty_schedule_users("PSCH503")
    assert raised.value.retry_after == 120
    assert raised.value.last_error == "timeout"
    assert snapshots_gateway.count(f"/api/v1/snapshots/{PD}/PSCH503") == 1


def test_a_503_is_retried_after_its_retry_after(
    snapshots_gateway: FakeGateway, snapshots_client: SnapshotsClient
) -> None:
    snapshots_gateway.add(PD, "PSCH001", USERS)
    snapshots_gateway.fail(PD, "PSCH001", "unavailable", times=1, retry_after=1)

    began = time.monotonic()
    users = snapshots_client.pagerduty_schedule_users("PSCH001")

    assert time.monotonic() - began >= 1.0
    assert [u.id for u in users] == ["PU001"]
    path = f"/api/v1/snapshots/{PD}/PSCH001"
    assert [r.status for r in snapshots_gateway.requests if r.path == path] == [503, 200]


def test_tokens_roles_refresh_history_and_runs(snapshots_gateway: FakeGateway) -> None:
    snapshots_gateway.add(PD, "PSCH001", USERS)
    snapshots_gateway.add(PD, "PSCH001", [])
    snapshots_gateway.require_token("reader-token")
    snapshots_gateway.require_token("operator-token", "operator")
    url = snapshots_gateway.url

    with SnapshotsClient(url, "wrong", retries=0) as stranger, pytest.raises(Unauthorized):
        stranger.get(PD, "PSCH001")
    with SnapshotsClient(url, "reader-token") as reader:
        history = reader.history(PD, "PSCH001", include_data=True)
        with pytest.raises(Forbidden):
            reader.refresh(PD, "PSCH001")
    with SnapshotsClient(url, "operator-token") as operator:
        started = operator.refresh(PD, "PSCH001")
        waited = operator.refresh(PD, "PSCH001", wait=5)
        run = operator.run(started.run_id)
    assert [(v.version, v.data) for v in history.versions] == [(2, []), (1, USERS)]
    assert isinstance(started, RefreshStarted)
    assert run.key == "PSCH001"
    assert run.finished
    assert waited.version == 2
    assert snapshots_gateway.refreshes == [(PD, "PSCH001"), (PD, "PSCH001")]


@pytest.mark.snapshots_data("data/canned_snapshots.json")
def test_a_json_file_of_snapshots_and_errors(snapshots_client: SnapshotsClient) -> None:
    users = snapshots_client.pagerduty_schedule_users("PSCH001")
    collaborators = snapshots_client.get("github.repo_collaborators", "acme/repo-01")
    with pytest.raises(Unavailable) as raised:
        snapshots_client.jira_project_issues("PRJ9")

    assert [u.name for u in users] == ["Ada Lovelace"]
    assert collaborators.freshness.stale
    assert collaborators.freshness.last_error == "github answered 502 for repo acme/repo-01"
    assert raised.value.last_error == "jira answered 500"


async def test_the_async_client_in_process_through_the_transport() -> None:
    gateway = FakeGateway()
    gateway.load({PD: {"PSCH001": USERS}})
    async with AsyncSnapshotsClient("http://snapshots.test", transport=gateway.transport()) as c:
        users = await c.pagerduty_schedule_users("PSCH001")
        again = await c.pagerduty_schedule_users("PSCH001")
    assert users == again
    assert users[0].id == "PU001"
    assert [r.status for r in gateway.requests] == [200, 304]


def test_bad_canned_input_says_what_to_change(tmp_path: Path) -> None:
    gateway = FakeGateway()
    with pytest.raises(ValueError, match="unknown error kind"):
        gateway.fail(PD, "PSCH001", "exploded")  # type: ignore[arg-type]
    broken = tmp_path / "broken.json"
    broken.write_text('{"pagerduty.schedule_users": ["PSCH001"]}')
    with pytest.raises(ValueError, match="must map keys to data"):
        gateway.load(broken)


def test_the_entry_point_gives_another_project_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bot="""
        from snapshots_client import SnapshotsClient, Unavailable
        import pytest

        def on_call(client):
            return [u.name for u in client.pagerduty_schedule_users("PSCH001")]

        def test_on_call(snapshots_gateway):
            snapshots_gateway.add("pagerduty.schedule_users", "PSCH001", [{"id": "P1", "name": "Bo"}])
            with SnapshotsClient() as client:
                assert on_call(client) == ["Bo"]

        def test_outage(snapshots_gateway, snapshots_client):
            snapshots_gateway.fail("pagerduty.schedule_users", "PSCH001", retry_after=60)
            with pytest.raises(Unavailable):
                on_call(snapshots_client)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
