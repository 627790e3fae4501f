"""Keys the upstream says do not exist: answered 404, remembered for the negative TTL, and
never polled on a timer (each one used to be refreshed every 30 s until restart)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from helpers import Gateway, Simulator, wait_for
from snapshots.config import JobsConfig

StartGateway = Callable[[JobsConfig], Gateway]
DATASET = "pagerduty.schedule_users"
# A 1 s TTL makes any timer on the key fire within about a second (the failure retry is
# capped by the interval), so a few seconds of silence upstream show there is none.
FAST = 'negative_ttl = "2s"\nmin_refresh_interval = "1ms"'


def _quiet_for(simulator: Simulator, seconds: float) -> int:
    """Upstream requests made while waiting `seconds`."""
    before = simulator.requests()
    time.sleep(seconds)
    return simulator.requests() - before


def test_unknown_key_gets_no_timer_and_is_checked_once_per_read_after_the_negative_ttl(
    start_gateway: StartGateway,
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(make_config(ttl="1s", extra=FAST))

    first = gateway.snapshot(DATASET, "PSCH999")
    assert first.status_code == 404
    assert first.json()["error"]["code"] == "not_found"
    # Inside the negative TTL a read is answered from memory.
    remembered = gateway.snapshot(DATASET, "PSCH999")
    assert remembered.status_code == 404
    assert "negative TTL" in remembered.json()["error"]["message"]
    assert simulator.requests() == 1

    # No timer: nothing reaches the upstream while nobody reads (the negative TTL runs out).
    assert _quiet_for(simulator, 3.5) == 0
    # After the negative TTL, one read checks the upstream once, and again starts no timer.
    assert gateway.snapshot(DATASET, "PSCH999").status_code == 404
    assert simulator.requests() == 2
    assert _quiet_for(simulator, 3.5) == 0
    assert db.execute("SELECT count(*) FROM dataset_keys").fetchone() == (0,)
    listed = gateway.http.get(f"/api/v1/datasets/{DATASET}/keys").json()
    assert "PSCH999" not in str(listed)


def test_forced_refresh_of_a_key_that_does_not_exist_is_404_and_leaves_no_timer(
    start_gateway: StartGateway,
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(make_config(ttl="1s", extra=FAST))

    response = gateway.http.post(f"/api/v1/snapshots/{DATASET}/PSCH999/refresh?wait=10")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "PSCH999" in error["message"]
    assert "last good snapshot" not in error["message"]
    assert _quiet_for(simulator, 3.5) == 0
    assert db.execute("SELECT count(*) FROM dataset_keys").fetchone() == (0,)


def test_unregistered_key_whose_first_fetch_failed_is_not_polled(
    start_gateway: StartGateway,
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
) -> None:
    gateway = start_gateway(make_config(ttl="1s", extra=FAST))
    simulator.add_fault("pagerduty", "error", status=500, count=100)

    response = gateway.snapshot(DATASET, "PSCH002")

    assert response.status_code == 503
    assert _quiet_for(simulator, 3.5) == 0


def test_registered_key_that_disappears_upstream_is_checked_at_its_ttl_not_the_retry(
    start_gateway: StartGateway,
    make_config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    """A configured key deleted upstream keeps its last snapshot (with the error) and is looked
    at on the dataset's own cadence (0.8 of an hour here), not every 30 s like a transient fault."""
    gateway = start_gateway(make_config(ttl="1h", keys=("PSCH001",), extra=FAST))
    wait_for(lambda: gateway.snapshot(DATASET, "PSCH001").status_code == 200)
    simulator.add_fault("pagerduty", "error", status=404, count=5, path="PSCH001")

    forced = gateway.http.post(f"/api/v1/snapshots/{DATASET}/PSCH001/refresh?wait=10")

    assert forced.status_code == 404
    assert forced.json()["error"]["code"] == "not_found"
    row = db.execute(
        "SELECT extract(epoch FROM next_refresh_at - last_refresh_at), last_outcome"
        " FROM dataset_keys WHERE key = 'PSCH001'"
    ).fetchone()
    assert row is not None
    assert row[1] == "failed"
    assert 0.8 * 3600 * 0.9 - 1 <= float(row[0]) <= 0.8 * 3600 + 1
    served = gateway.snapshot(DATASET, "PSCH001").json()
    assert served["version"] == 1
    assert "PSCH001" in served["freshness"]["last_error"]
