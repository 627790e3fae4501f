"""The HTTP contract at its edges: integer bounds, HEAD, the metrics media type, keys that end
in `history` or `refresh`, and what a refused forced refresh says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import Gateway, wait_for
from snapshots.config import JobsConfig

StartGateway = Callable[[JobsConfig], Gateway]
PD = "pagerduty.schedule_users"
VIEW = "github.repo_view"
VIEW_DATASET = f"""
[datasets."{VIEW}"]
fetch = "user_fetch:repo_view"
ttl = "10m"
key_pattern = "[a-z0-9-]+/[a-z0-9-]+(/[a-z]+)?"
key_example = "acme/repo-01/history"
min_refresh_interval = "1ms"
"""


@pytest.fixture
def config(every_dataset_config: Callable[..., JobsConfig]) -> Callable[..., JobsConfig]:
    return every_dataset_config


def _versions(db: psycopg.Connection[Any]) -> list[tuple[str, str, int]]:
    return db.execute("SELECT dataset, key, version FROM snapshots ORDER BY 1, 2, 3").fetchall()


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        (f"/api/v1/snapshots/{PD}/PSCH001/history?before_version=2147483648", "before_version"),
        (f"/api/v1/history/{PD}/PSCH001?before_version=99999999999999999999999", "before_version"),
        (f"/api/v1/history/{PD}/PSCH001?limit=2147483648", "limit"),
        ("/api/v1/runs/9223372036854775808", "run_id"),
        (f"/api/v1/snapshots/{PD}/PSCH001?max_age=nan", "max_age"),
    ],
)
def test_out_of_range_integers_are_400_naming_the_parameter(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    db: psycopg.Connection[Any],
    path: str,
    parameter: str,
) -> None:
    gateway = start_gateway(config())
    wait_for(lambda: gateway.snapshot(PD, "PSCH001").status_code == 200)
    before = _versions(db)

    response = gateway.http.get(path)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"
    assert parameter in response.json()["error"]["message"]
    assert _versions(db) == before


def test_head_answers_like_get_without_a_body_on_every_get_route(
    start_gateway: StartGateway, config: Callable[..., JobsConfig]
) -> None:
    gateway = start_gateway(config())
    wait_for(lambda: gateway.snapshot(PD, "PSCH001").status_code == 200)
    paths = [
        f"/api/v1/snapshots/{PD}/PSCH001",
        f"/api/v1/latest/{PD}/PSCH001",
        f"/api/v1/history/{PD}/PSCH001",
        "/api/v1/pagerduty/schedules/PSCH001/users",
        "/api/v1/datasets",
        f"/api/v1/datasets/{PD}/keys",
        "/api/v1/providers",
        "/healthz",
        "/readyz",
        "/metrics",
        f"/api/v1/snapshots/{PD}/not-a-key",
    ]
    for path in paths:
        got = gateway.http.get(path)
        head = gateway.http.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
        assert head.headers.get("etag") == got.headers.get("etag"), path

    etag = gateway.snapshot(PD, "PSCH001").headers["etag"]
    conditional = gateway.http.head(
        f"/api/v1/snapshots/{PD}/PSCH001", headers={"If-None-Match": etag}
    )
    assert conditional.status_code == 304
    assert conditional.headers["etag"] == etag
    assert gateway.http.head(f"/api/v1/refresh/{PD}/PSCH001").status_code == 405


def test_metrics_content_type_is_exactly_prometheus_text_and_the_body_parses(
    start_gateway: StartGateway, config: Callable[..., JobsConfig]
) -> None:
    gateway = start_gateway(config())
    wait_for(lambda: gateway.snapshot(PD, "PSCH001").status_code == 200)

    response = gateway.http.get("/metrics")

    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    reads = families["snapshots_reads"]
    assert any(s.labels.get("dataset") == PD for s in reads.samples)


def test_keys_ending_in_history_or_refresh_have_unambiguous_routes(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], db: psycopg.Connection[Any]
) -> None:
    gateway = start_gateway(config(VIEW_DATASET))

    # The canonical routes: the whole rest of the path is the key, whatever it ends in.
    literal = gateway.http.get(f"/api/v1/latest/{VIEW}/acme/repo-01/history")
    assert literal.status_code == 200
    assert literal.json()["key"] == "acme/repo-01/history"
    assert literal.json()["data"]["view"] == "history"
    refreshed = gateway.http.post(f"/api/v1/refresh/{VIEW}/acme/repo-01/refresh?wait=10")
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["key"] == "acme/repo-01/refresh"
    history = gateway.http.get(f"/api/v1/history/{VIEW}/acme/repo-01/history").json()
    assert history["key"] == "acme/repo-01/history"
    assert [v["version"] for v in history["versions"]] == [1]

    # Under /snapshots/, POST always strips /refresh: .../{key}/refresh for every key.
    stem = gateway.http.post(f"/api/v1/snapshots/{VIEW}/acme/repo-02/refresh?wait=10")
    assert stem.status_code == 200, stem.text
    assert stem.json()["key"] == "acme/repo-02"
    suffixed = gateway.http.post(f"/api/v1/snapshots/{VIEW}/acme/repo-02/refresh/refresh?wait=10")
    assert suffixed.status_code == 200, suffixed.text
    assert suffixed.json()["key"] == "acme/repo-02/refresh"

    # A GET under /snapshots/ that means two things is refused, naming both canonical routes,
    # and fetches nothing.
    keys_before = db.execute("SELECT key FROM dataset_keys ORDER BY key").fetchall()
    ambiguous = gateway.http.get(f"/api/v1/snapshots/{VIEW}/acme/repo-02/history")
    assert ambiguous.status_code == 400
    message = ambiguous.json()["error"]["message"]
    assert f"/api/v1/history/{VIEW}/acme/repo-02" in message
    assert f"/api/v1/latest/{VIEW}/acme/repo-02/history" in message
    assert db.execute("SELECT key FROM dataset_keys ORDER BY key").fetchall() == keys_before

    # Where only one meaning is possible, the suffix routes work as before.
    collaborators = gateway.http.get("/api/v1/snapshots/github.repo/acme/repo-05/history")
    assert collaborators.status_code == 200
    assert collaborators.json()["key"] == "acme/repo-05"
    assert gateway.http.get(f"/api/v1/snapshots/{VIEW}/acme/repo-03").status_code == 200


def test_forced_refresh_right_after_another_is_429_with_the_latest_version_as_a_field(
    start_gateway: StartGateway, config: Callable[..., JobsConfig]
) -> None:
    gateway = start_gateway(config(each_dataset='min_refresh_interval = "1h"'))
    wait_for(lambda: gateway.snapshot(PD, "PSCH001").status_code == 200)

    response = gateway.http.post(f"/api/v1/snapshots/{PD}/PSCH001/refresh")

    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "refresh_too_soon"
    assert error["latest_version"] == 1
    assert "min_refresh_interval" in error["message"]
    assert int(response.headers["Retry-After"]) > 3000
