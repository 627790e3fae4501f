"""The read API by the HTTP standards: caching headers and 304, roles, every route, metrics."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from helpers import Gateway, Simulator, runs_with_outcome, wait_for
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig

StartGateway = Callable[[JobsConfig], Gateway]
PD = "pagerduty.schedule_users"


@pytest.fixture
def config(every_dataset_config: Callable[..., JobsConfig]) -> Callable[..., JobsConfig]:
    return every_dataset_config


def test_snapshot_carries_etag_last_modified_age_cache_control_and_stale_flag(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], db: psycopg.Connection[Any]
) -> None:
    gateway = start_gateway(config())
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)

    response = gateway.snapshot(PD, "PSCH001")

    body = response.json()
    content_hash = db.execute("SELECT content_hash FROM snapshots").fetchone()
    assert content_hash is not None
    assert response.headers["ETag"] == f'"{content_hash[0]}"'
    fetched = body["freshness"]["fetched_at"]
    assert (
        abs(parsedate_to_datetime(response.headers["Last-Modified"]).timestamp() - _ts(fetched)) < 1
    )
    assert int(response.headers["Age"]) == int(body["freshness"]["age_seconds"])
    max_age = int(response.headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert 299 - int(response.headers["Age"]) <= max_age <= 300
    assert "stale-if-error=3600" in response.headers["Cache-Control"]
    assert response.headers["X-Snapshot-Stale"] == "false"
    assert response.headers["X-Request-ID"]


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_if_none_match_with_the_current_etag_is_304_without_a_body(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(config())
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    etag = gateway.snapshot(PD, "PSCH001").headers["ETag"]
    url = f"/api/v1/snapshots/{PD}/PSCH001"

    not_modified = gateway.http.get(url, headers={"If-None-Match": etag})
    weak = gateway.http.get(url, headers={"If-None-Match": f'"other", W/{etag}'})
    other = gateway.http.get(url, headers={"If-None-Match": '"something-else"'})
    simulator.rotate_schedule("PSCH001")
    gateway.http.post(f"{url}/refresh", params={"wait": 5})
    changed = gateway.http.get(url, headers={"If-None-Match": etag})

    assert not_modified.status_code == weak.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["ETag"] == etag
    assert "max-age=" in not_modified.headers["Cache-Control"]
    assert other.status_code == 200
    assert changed.status_code == 200  # a new version: the hot-path cache was invalidated
    assert changed.json()["version"] == 2
    assert changed.headers["ETag"] != etag


def test_stale_snapshot_says_so_in_headers_and_body(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(config())
    assert gateway.snapshot("jira.project", "PRJ1").status_code == 200
    db.execute("UPDATE snapshots SET verified_at = now() - interval '2 hours' WHERE key = 'PRJ1'")
    db.execute(
        "UPDATE dataset_keys SET last_refresh_at = now() - interval '2 hours' WHERE key = 'PRJ1'"
    )
    simulator.add_fault("jira", "error", status=500, count=20)
    gateway.http.post("/api/v1/snapshots/jira.project/PRJ1/refresh", params={"wait": 30})

    response = gateway.snapshot("jira.project", "PRJ1")

    assert response.status_code == 200
    assert response.headers["X-Snapshot-Stale"] == "true"
    assert response.headers["Cache-Control"].startswith("max-age=0,")
    assert "stale-if-error=3600" in response.headers["Cache-Control"]
    assert int(response.headers["Age"]) >= 7200
    assert response.json()["freshness"]["stale"] is True
    assert "500" in response.json()["freshness"]["last_error"]


def test_roles_guard_reads_and_refreshes(
    tmp_path: Path,
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    db: psycopg.Connection[Any],
) -> None:
    tokens = tmp_path / "tokens"
    reader = create_token(tokens, "dashboard", "reader")
    operator = create_token(tokens, "oncall", "operator")
    gateway = start_gateway(config(api=f'tokens_file = "{tokens}"'))
    url = f"/api/v1/snapshots/{PD}/PSCH001"
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)

    def call(method: str, path: str, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return gateway.http.request(method, path, headers=headers)

    assert call("GET", url, None).status_code == 401
    assert call("GET", url, "snp_not-a-token").status_code == 401
    assert call("GET", url, reader).status_code == 200
    assert call("POST", f"{url}/refresh", reader).status_code == 403
    assert call("POST", f"{url}/refresh", operator).status_code == 202
    assert call("GET", "/healthz", None).status_code == 200
    assert call("GET", "/metrics", None).status_code == 200
    assert call("GET", "/schema/openapi.json", None).status_code == 200
    assert call("GET", url, None).json()["error"]["code"] == "unauthorized"
    forbidden = call("POST", "/api/v1/datasets/pagerduty.schedule_users/refresh", reader).json()
    assert forbidden["error"] == {
        "code": "forbidden",
        "message": "token 'dashboard' has role reader; this needs operator",
    }
    assert reader not in tokens.read_text()
    assert operator not in tokens.read_text()


def test_history_pages_newest_first_with_and_without_data(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(config())
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    for _ in range(3):
        simulator.rotate_schedule("PSCH001")
        refreshed = gateway.http.post(f"/api/v1/snapshots/{PD}/PSCH001/refresh", params={"wait": 5})
        assert refreshed.headers["X-Refresh-Outcome"] == "changed", refreshed.text
    url = f"/api/v1/snapshots/{PD}/PSCH001/history"

    first = gateway.http.get(url, params={"limit": 3}).json()
    assert first["next"].startswith(f"/api/v1/history/{PD}/PSCH001?")  # unambiguous for any key
    second = gateway.http.get(first["next"]).json()
    with_data = gateway.http.get(url, params={"include": "data", "limit": 1}).json()

    assert [v["version"] for v in first["versions"]] == [4, 3, 2]
    assert [v["version"] for v in second["versions"]] == [1]
    assert second["next"] is None
    assert all(v["data"] is None for v in first["versions"])
    assert with_data["versions"][0]["data"] == gateway.snapshot(PD, "PSCH001").json()["data"]


def test_keys_with_a_slash_serve_snapshots_and_history(
    start_gateway: StartGateway, config: Callable[..., JobsConfig]
) -> None:
    gateway = start_gateway(config())

    snapshot = gateway.snapshot("github.repo", "acme/repo-05")
    history = gateway.http.get("/api/v1/snapshots/github.repo/acme/repo-05/history").json()
    refresh = gateway.http.post("/api/v1/snapshots/github.repo/acme/repo-05/refresh")

    assert snapshot.json()["key"] == "acme/repo-05"
    assert [v["version"] for v in history["versions"]] == [1]
    assert refresh.status_code in (202, 429)
    assert refresh.status_code != 202 or refresh.json()["key"] == "acme/repo-05"


def test_integration_shaped_routes_return_the_bare_data_with_freshness_headers(
    start_gateway: StartGateway, config: Callable[..., JobsConfig]
) -> None:
    gateway = start_gateway(config())
    routes = {
        "/api/v1/pagerduty/schedules/PSCH002/users": (PD, "PSCH002"),
        "/api/v1/pagerduty/escalation_policies/PPOL002": ("pagerduty.escalation_policy", "PPOL002"),
        "/api/v1/github/repos/acme/repo-03/collaborators": (
            "github.repo_collaborators",
            "acme/repo-03",
        ),
        "/api/v1/github/repos/acme/repo-03": ("github.repo", "acme/repo-03"),
        "/api/v1/jira/projects/PRJ2": ("jira.project", "PRJ2"),
        "/api/v1/jira/projects/PRJ2/issues": ("jira.project_issues", "PRJ2"),
    }

    for path, (dataset, key) in routes.items():
        bare = gateway.http.get(path)
        wrapped = gateway.snapshot(dataset, key)
        assert bare.status_code == 200, path
        assert bare.json() == wrapped.json()["data"], path
        assert bare.headers["ETag"] == wrapped.headers["ETag"], path
        assert "X-Snapshot-Stale" in bare.headers


def test_dataset_routes_report_keys_freshness_and_budget(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(config())
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    simulator.add_fault("pagerduty", "error", status=500, count=20)
    gateway.snapshot(PD, "PSCH009")  # a key whose first fetch fails

    datasets = {d["dataset"]: d for d in gateway.http.get("/api/v1/datasets").json()}
    detail = gateway.http.get(f"/api/v1/datasets/{PD}").json()
    keys = {k["key"]: k for k in gateway.http.get(f"/api/v1/datasets/{PD}/keys").json()}

    summary = datasets[PD]
    assert (summary["keys"], summary["fresh"], summary["failing"]) == (1, 1, 0)
    assert summary["provider"] == "pagerduty"
    assert summary["enabled"] is True
    assert summary["budget"]["limit"] == 900
    assert detail["dataset"]["dataset"] == PD
    assert keys["PSCH001"]["version"] == 1
    assert keys["PSCH001"]["stale"] is False
    assert keys["PSCH001"]["last_outcome"] == "changed"
    assert "PSCH009" not in keys  # a failed cold miss registers nothing
    assert gateway.http.get("/api/v1/datasets/nope.nothing").status_code == 404


def test_metrics_count_reads_refreshes_upstream_answers_and_budgets(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], db: psycopg.Connection[Any]
) -> None:
    gateway = start_gateway(config())
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    etag = gateway.snapshot(PD, "PSCH001").headers["ETag"]
    gateway.http.get(f"/api/v1/snapshots/{PD}/PSCH001", headers={"If-None-Match": etag})
    gateway.snapshot(PD, "PSCH004")

    text = gateway.http.get("/metrics").text

    assert 'snapshots_reads_total{dataset="pagerduty.schedule_users",result="hit"}' in text
    assert (
        'snapshots_reads_total{dataset="pagerduty.schedule_users",result="not_modified"} 1.0'
        in text
    )
    assert 'snapshots_reads_total{dataset="pagerduty.schedule_users",result="miss"} 1.0' in text
    assert (
        'snapshots_refresh_duration_seconds_count{dataset="pagerduty.schedule_users",outcome="changed"} 2.0'
        in text
    )
    assert 'snapshots_upstream_requests_total{provider="pagerduty",status="2xx"} 2.0' in text
    assert 'snapshots_budget_tokens_left{provider="pagerduty"} 898.0' in text
    assert 'snapshots_budget_waiting{priority="interactive",provider="pagerduty"} 0.0' in text
    assert 'snapshots_snapshot_age_max_seconds{dataset="pagerduty.schedule_users"}' in text
    assert (
        'snapshots_snapshot_age_seconds_bucket{dataset="pagerduty.schedule_users",le="60"} 2.0'
        in text
    )
    assert "snapshots_refresh_queue_depth 0.0" in text


def test_request_id_is_echoed_when_sane_and_made_up_otherwise(
    start_gateway: StartGateway, config: Callable[..., JobsConfig]
) -> None:
    gateway = start_gateway(config())

    echoed = gateway.http.get("/healthz", headers={"X-Request-ID": "abc-123"})
    replaced = gateway.http.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})

    another = gateway.http.get("/healthz")

    assert echoed.headers["X-Request-ID"] == "abc-123"
    made_up = {replaced.headers["X-Request-ID"], another.headers["X-Request-ID"]}
    assert len(made_up) == 2  # unique per request
    assert all(re.fullmatch(r"[0-9a-f]{24}", rid) for rid in made_up)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", f"/api/v1/snapshots/{PD}/lower-case", 400, "malformed_key"),
        ("GET", "/api/v1/snapshots/nope.dataset/X", 404, "unknown_dataset"),
        ("GET", f"/api/v1/snapshots/{PD}/PSCH001?max_age=-1", 400, "bad_request"),
        ("GET", "/api/v1/runs/999999", 404, "unknown_run"),
        ("GET", "/api/v1/nothing-here", 404, "not_found"),
        ("DELETE", f"/api/v1/snapshots/{PD}/PSCH001", 405, "method_not_allowed"),
        ("POST", f"/api/v1/snapshots/{PD}/PSCH001", 400, "malformed_key"),
    ],
)
def test_errors_are_json_with_a_code_and_no_trace(
    method: str,
    path: str,
    status: int,
    code: str,
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
) -> None:
    gateway = start_gateway(config())

    response = gateway.http.request(method, path)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert "Traceback" not in response.text


def test_an_idle_keep_alive_connection_outlives_a_clients_idle_expiry(
    start_gateway: StartGateway, config: Callable[..., JobsConfig]
) -> None:
    """The server is not the side that closes an idle connection first: httpx keeps one for
    5 s (load balancers for 60 s); a server closing at the same moment races the client's next
    request on it, which then fails with "Server disconnected without sending a response"."""
    gateway = start_gateway(config())
    request = b"GET /healthz HTTP/1.1\r\nHost: gateway.test\r\n\r\n"
    with socket.create_connection(("127.0.0.1", gateway.server.port), timeout=10) as sock:
        for pause in (0.0, 6.5):  # the second request after longer than httpx's expiry
            time.sleep(pause)
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 "), pause
