"""Simulator -> refresh -> Postgres -> API, through the real PagerDuty client and a running gateway."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg

from helpers import Gateway, Simulator, runs_with_outcome, wait_for
from snapshots.config import JobsConfig
from snapshots.simulator import pagerduty_data

DATASET = "pagerduty.schedule_users"
StartGateway = Callable[[JobsConfig], Gateway]


def _versions(db: psycopg.Connection[Any], key: str) -> list[tuple[int, str]]:
    rows = db.execute(
        "SELECT version, content_hash FROM snapshots WHERE dataset = %s AND key = %s ORDER BY version",
        (DATASET, key),
    ).fetchall()
    return [(int(v), str(h)) for v, h in rows]


def test_configured_key_is_fetched_at_start_and_served_with_freshness(
    start_gateway: StartGateway,
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(make_config(keys=("PSCH001",)))
    wait_for(lambda: _versions(db, "PSCH001"))
    requests_after_warmup = simulator.requests()

    response = gateway.snapshot(DATASET, "PSCH001")

    assert response.status_code == 200
    body = response.json()
    assert body["dataset"] == DATASET
    assert body["key"] == "PSCH001"
    assert body["version"] == 1
    expected_ids = [u["id"] for u in pagerduty_data.on_call_users(1, rotation=0)]
    assert [u["id"] for u in body["data"]] == expected_ids
    freshness = body["freshness"]
    assert freshness["ttl_seconds"] == 300
    assert freshness["stale"] is False
    assert freshness["last_error"] is None
    assert 0 <= freshness["age_seconds"] < 300
    fetched_at = datetime.fromisoformat(freshness["fetched_at"])
    next_refresh_at = datetime.fromisoformat(freshness["next_refresh_at"])
    # refresh-ahead: the next refresh is due before the TTL runs out
    assert 0 < (next_refresh_at - fetched_at).total_seconds() < 300
    # the read was served from Postgres, not from the upstream
    assert simulator.requests() == requests_after_warmup == 1
    run = db.execute(
        "SELECT trigger, outcome, upstream_requests, error FROM refresh_runs"
    ).fetchall()
    assert run == [("schedule", "changed", 1, None)]


def test_cold_miss_registers_the_key_and_later_reads_do_not_call_upstream(
    start_gateway: StartGateway,
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(make_config())

    first = gateway.snapshot(DATASET, "PSCH007")
    second = gateway.snapshot(DATASET, "PSCH007")

    assert first.status_code == second.status_code == 200
    assert first.json()["data"] == second.json()["data"]
    assert simulator.requests() == 1
    registered = db.execute("SELECT source FROM dataset_keys WHERE key = 'PSCH007'").fetchall()
    assert registered == [("demand",)]
    assert db.execute("SELECT trigger FROM refresh_runs").fetchall() == [("miss",)]


def test_scheduled_refresh_stores_a_new_version_only_when_content_changes(
    start_gateway: StartGateway,
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(make_config(ttl="1s", keys=("PSCH002",)))
    wait_for(lambda: _versions(db, "PSCH002"))
    # an identical fetch moves verified_at forward and adds no version
    wait_for(lambda: runs_with_outcome(db, "unchanged") >= 1)
    assert len(_versions(db, "PSCH002")) == 1
    verified = db.execute("SELECT fetched_at < verified_at FROM snapshots").fetchone()
    assert verified == (True,)

    simulator.rotate_schedule("PSCH002")
    versions = wait_for(lambda: len(_versions(db, "PSCH002")) == 2 and _versions(db, "PSCH002"))

    assert versions[0][1] != versions[1][1]
    body = gateway.snapshot(DATASET, "PSCH002").json()
    assert body["version"] == 2
    assert [u["id"] for u in body["data"]] == [
        u["id"] for u in pagerduty_data.on_call_users(2, rotation=1)
    ]


def test_failed_refresh_keeps_serving_last_good_snapshot(
    start_gateway: StartGateway,
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(make_config(ttl="1s", keys=("PSCH003",)))
    wait_for(lambda: _versions(db, "PSCH003"))
    good = gateway.snapshot(DATASET, "PSCH003").json()

    simulator.set_token("pagerduty", "rotated-upstream-token")
    wait_for(lambda: runs_with_outcome(db, "failed") >= 1)
    after = wait_for(
        lambda: (b := gateway.snapshot(DATASET, "PSCH003").json())["freshness"]["stale"] and b
    )

    assert after["data"] == good["data"]
    assert after["version"] == good["version"] == 1
    assert "401" in after["freshness"]["last_error"]
    assert "token" in after["freshness"]["last_error"]
    assert len(_versions(db, "PSCH003")) == 1


def test_upstream_not_found_is_404_and_the_key_is_not_registered(
    start_gateway: StartGateway,
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(make_config())

    response = gateway.snapshot(DATASET, "PSCH999")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "PSCH999" in response.json()["error"]["message"]
    assert db.execute("SELECT count(*) FROM dataset_keys").fetchone() == (0,)
    assert db.execute("SELECT outcome FROM refresh_runs").fetchall() == [("failed",)]


def test_malformed_key_is_rejected_before_any_upstream_call(
    start_gateway: StartGateway, make_config: Callable[..., JobsConfig], simulator: Simulator
) -> None:
    gateway = start_gateway(make_config())

    response = gateway.snapshot(DATASET, "not-a-schedule")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_key"
    assert "PABC123" in error["message"]  # the message shows the expected format
    assert simulator.requests() == 0


def test_unknown_dataset_is_404_listing_the_registered_ones(
    start_gateway: StartGateway, make_config: Callable[..., JobsConfig]
) -> None:
    gateway = start_gateway(make_config())

    response = gateway.snapshot("pagerduty.nope", "PSCH001")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_dataset"
    assert DATASET in response.json()["error"]["message"]


def test_dataset_without_token_is_disabled_with_the_missing_setting_named(
    start_gateway: StartGateway,
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(make_config(token=None, keys=("PSCH001",)))

    response = gateway.snapshot(DATASET, "PSCH001")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "dataset_disabled"
    assert "SNAPSHOTS_PAGERDUTY_TOKEN" in response.json()["error"]["message"]
    assert gateway.http.get("/healthz").status_code == 200
    assert simulator.requests() == 0
    row = db.execute("SELECT enabled, disabled_reason FROM datasets").fetchone()
    assert row is not None
    assert row[0] is False
    assert "no token" in row[1]


def test_restart_does_not_refetch_keys_that_are_still_fresh(
    start_gateway: StartGateway,
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    config = make_config(keys=("PSCH004", "PSCH005"))
    first = start_gateway(config)
    wait_for(lambda: len(_versions(db, "PSCH004")) == 1 and len(_versions(db, "PSCH005")) == 1)
    first.stop()
    assert simulator.requests() == 2

    second = start_gateway(config)

    assert second.snapshot(DATASET, "PSCH004").status_code == 200
    assert second.snapshot(DATASET, "PSCH005").status_code == 200
    assert simulator.requests() == 2


def test_health_and_readiness_answer(
    start_gateway: StartGateway, make_config: Callable[..., JobsConfig]
) -> None:
    gateway = start_gateway(make_config())

    assert gateway.http.get("/healthz").json() == {"status": "ok"}
    assert gateway.http.get("/readyz").json() == {"status": "ready"}
