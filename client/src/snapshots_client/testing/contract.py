"""The behaviour suite that the fake gateway and the real one both pass, so they cannot drift.

A test module subclasses `GatewayContract` and provides a `gateway_under_test` fixture that
returns a `GatewayUnderTest`: the client's own suite does so with `FakeGateway`, the service's
with a running gateway on the upstream simulator. Every test talks HTTP through the real
`SnapshotsClient` (and raw httpx where the headers are the point).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

import httpx
import msgspec
import pytest

from snapshots_client import (
    BadRequest,
    Forbidden,
    NotFound,
    RefreshStarted,
    Snapshot,
    SnapshotsClient,
    Unauthorized,
)
from snapshots_client.http_caching import ERROR_STATUS
from snapshots_client.wire import ErrorBody, History

Role = Literal["reader", "operator"]


class GatewayUnderTest(Protocol):
    """What the contract needs from a gateway: where it is, tokens, and new versions of a key."""

    url: str
    dataset: str  # a dataset whose keys `publish` writes

    def token(self, role: Role) -> str:
        """A token the gateway accepts with `role`."""
        ...

    def key(self, number: int) -> str:
        """A valid key of `dataset` (distinct for each number), not yet read by anyone."""
        ...

    def publish(self, key: str) -> Any:
        """Have the gateway store a new version of `key`, unlike the last; return its data."""
        ...


def _raw(gateway: GatewayUnderTest, role: Role = "reader") -> httpx.Client:
    headers = {"Authorization": f"Bearer {gateway.token(role)}"}
    return httpx.Client(base_url=gateway.url, headers=headers, timeout=30)


def _error(response: httpx.Response) -> str:
    """The error code of an answer, checked against the shared error table."""
    code = msgspec.json.decode(response.content, type=ErrorBody).error.code
    assert ERROR_STATUS[code] == response.status_code, (code, response.status_code)
    return code


class GatewayContract:
    """Snapshot reads, caching headers, 304s, history links, refresh, runs and error bodies."""

    def test_a_snapshot_comes_with_its_data_and_caching_headers(
        self, gateway_under_test: GatewayUnderTest
    ) -> None:
        gateway = gateway_under_test
        key = gateway.key(1)
        data = gateway.publish(key)
        with SnapshotsClient(gateway.url, gateway.token("reader"), retries=0) as client:
            snapshot = client.get(gateway.dataset, key)
        assert snapshot.data == data
        assert (snapshot.dataset, snapshot.key) == (gateway.dataset, key)
        assert not snapshot.freshness.stale
        assert snapshot.freshness.ttl_seconds > 0

        with _raw(gateway) as http:
            response = http.get(f"/api/v1/snapshots/{gateway.dataset}/{key}")
        assert response.status_code == 200
        headers = response.headers
        assert re.fullmatch(r'"[0-9a-f]{64}"', headers["etag"])
        assert headers["x-snapshot-version"] == str(snapshot.version)
        assert headers["x-snapshot-stale"] == "false"
        assert int(headers["age"]) >= 0
        control = re.fullmatch(r"max-age=(\d+), stale-if-error=(\d+)", headers["cache-control"])
        assert control is not None, headers["cache-control"]
        assert int(control[1]) <= snapshot.freshness.ttl_seconds
        modified = parsedate_to_datetime(headers["last-modified"])
        assert abs(modified - snapshot.freshness.fetched_at) < timedelta(seconds=1)
        body = msgspec.json.decode(response.content, type=Snapshot)
        assert (body.data, body.version) == (data, snapshot.version)

    def test_a_current_etag_answers_304_without_a_body(
        self, gateway_under_test: GatewayUnderTest
    ) -> None:
        gateway = gateway_under_test
        key = gateway.key(2)
        gateway.publish(key)
        path = f"/api/v1/snapshots/{gateway.dataset}/{key}"
        with _raw(gateway) as http:
            first = http.get(path)
            etag = first.headers["etag"]
            for condition in (etag, f"W/{etag}", f'"other", {etag}', "*"):
                again = http.get(path, headers={"If-None-Match": condition})
                assert again.status_code == 304, condition
                assert again.content == b""
                assert again.headers["etag"] == etag
                assert "max-age=" in again.headers["cache-control"]
            changed = http.get(path, headers={"If-None-Match": '"not-this-version"'})
        assert changed.status_code == 200
        assert changed.json()["version"] == first.json()["version"]

    def test_history_pages_link_the_next_with_every_parameter(
        self, gateway_under_test: GatewayUnderTest
    ) -> None:
        gateway = gateway_under_test
        key = gateway.key(3)
        since = datetime.now(UTC) - timedelta(hours=1)
        older = gateway.publish(key)
        newer = gateway.publish(key)
        with _raw(gateway) as http:
            params = {"limit": "1", "include": "data", "since": since.isoformat()}
            first = http.get(f"/api/v1/history/{gateway.dataset}/{key}", params=params)
            assert first.status_code == 200, first.text
            page = msgspec.json.decode(first.content, type=History)
            assert [v.data for v in page.versions] == [newer]
            assert page.next is not None
            link = httpx.URL(page.next)
            assert link.params["limit"] == "1"
            assert link.params["include"] == "data"
            assert datetime.fromisoformat(link.params["since"]) == since
            assert int(link.params["before_version"]) == page.versions[0].version
            second = msgspec.json.decode(http.get(page.next).content, type=History)
        assert [v.data for v in second.versions] == [older]
        assert second.versions[0].version < page.versions[0].version
        with SnapshotsClient(gateway.url, gateway.token("reader"), retries=0) as client:
            via_client = client.history(gateway.dataset, key, limit=1)
            assert via_client.next_before_version == page.versions[0].version
            rest = client.history(
                gateway.dataset, key, before_version=via_client.next_before_version
            )
        assert rest.versions[0].version == second.versions[0].version

    def test_refresh_starts_a_run_and_waits_for_a_snapshot(
        self, gateway_under_test: GatewayUnderTest
    ) -> None:
        gateway = gateway_under_test
        key = gateway.key(4)
        gateway.publish(key)
        with SnapshotsClient(gateway.url, gateway.token("operator"), retries=0) as client:
            started = client.refresh(gateway.dataset, key, accept_shrink=True)
            assert isinstance(started, RefreshStarted)
            assert (started.dataset, started.key) == (gateway.dataset, key)
            run = client.run(started.run_id)
            assert (run.id, run.dataset, run.key) == (started.run_id, gateway.dataset, key)
            waited = client.refresh(gateway.dataset, key, wait=30, accept_shrink=True)
        assert isinstance(waited, Snapshot)
        assert waited.key == key

    def test_errors_have_one_body_and_status_and_become_client_exceptions(
        self, gateway_under_test: GatewayUnderTest
    ) -> None:
        gateway = gateway_under_test
        key = gateway.key(5)
        gateway.publish(key)
        with SnapshotsClient(gateway.url, gateway.token("reader"), retries=0) as reader:
            with pytest.raises(NotFound) as unknown:
                reader.get("no-such.dataset", key)
            assert unknown.value.code == "unknown_dataset"
            with pytest.raises(Forbidden):
                reader.refresh(gateway.dataset, key)
            with pytest.raises(BadRequest):
                reader.history(gateway.dataset, key, limit=0)
        stranger = SnapshotsClient(gateway.url, "snp_unknown-token", retries=0)
        with stranger, pytest.raises(Unauthorized):
            stranger.get(gateway.dataset, key)

        with _raw(gateway) as http:
            answers = {
                "unknown_dataset": http.get(f"/api/v1/snapshots/no-such.dataset/{key}"),
                "forbidden": http.post(f"/api/v1/snapshots/{gateway.dataset}/{key}/refresh"),
                "bad_request": http.get(
                    f"/api/v1/history/{gateway.dataset}/{key}", params={"limit": "0"}
                ),
            }
        for expected, response in answers.items():
            assert _error(response) == expected
        with httpx.Client(base_url=gateway.url) as anonymous:
            assert _error(anonymous.get(f"/api/v1/snapshots/{gateway.dataset}/{key}")) == (
                "unauthorized"
            )

    def test_head_answers_like_get_without_a_body(
        self, gateway_under_test: GatewayUnderTest
    ) -> None:
        gateway = gateway_under_test
        key = gateway.key(6)
        gateway.publish(key)
        path = f"/api/v1/snapshots/{gateway.dataset}/{key}"
        with _raw(gateway) as http:
            got = http.get(path)
            head = http.head(path)
            current = http.head(path, headers={"If-None-Match": got.headers["etag"]})
            unknown = http.head(f"/api/v1/snapshots/no-such.dataset/{key}")
        assert head.status_code == 200
        assert head.content == b""
        for name in ("etag", "x-snapshot-version", "last-modified", "x-snapshot-stale"):
            assert head.headers[name] == got.headers[name], name
        assert current.status_code == 304
        assert current.content == b""
        assert unknown.status_code == 404
        assert unknown.content == b""

    def test_max_age_must_be_a_number_of_seconds(
        self, gateway_under_test: GatewayUnderTest
    ) -> None:
        gateway = gateway_under_test
        key = gateway.key(7)
        gateway.publish(key)
        path = f"/api/v1/snapshots/{gateway.dataset}/{key}"
        with _raw(gateway) as http:
            for bad in ("-1", "soon"):
                assert _error(http.get(path, params={"max_age": bad})) == "bad_request", bad
            fresh_enough = http.get(path, params={"max_age": "3600"})
        assert fresh_enough.status_code == 200
        client = SnapshotsClient(gateway.url, gateway.token("reader"), retries=0)
        with client, pytest.raises(BadRequest):
            client.get(gateway.dataset, key, max_age=-1)

    def test_operators_read_datasets_keys_and_providers(
        self, gateway_under_test: GatewayUnderTest
    ) -> None:
        gateway = gateway_under_test
        key = gateway.key(6)
        gateway.publish(key)
        with SnapshotsClient(gateway.url, gateway.token("reader"), retries=0) as client:
            snapshot = client.get(gateway.dataset, key)
            datasets = {d.dataset: d for d in client.datasets()}
            keys = {k.key: k for k in client.keys(gateway.dataset)}
            providers = client.providers()
        assert datasets[gateway.dataset].keys >= 1
        assert datasets[gateway.dataset].enabled
        assert keys[key].version == snapshot.version
        assert keys[key].fetched_at is not None
        assert any(gateway.dataset in p.datasets for p in providers)

    def test_the_bearer_scheme_is_case_insensitive(
        self, gateway_under_test: GatewayUnderTest
    ) -> None:
        gateway = gateway_under_test
        key = gateway.key(7)
        gateway.publish(key)
        headers = {"Authorization": f"bearer {gateway.token('reader')}"}
        with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as http:
            answer = http.get(f"/api/v1/snapshots/{gateway.dataset}/{key}")
        assert answer.status_code == 200, answer.text
