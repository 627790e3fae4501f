"""Several processes on one PostgreSQL: two workers and an API replica. Only the active worker
calls upstreams; a standby takes over within two lock checks when it dies or loses its lock;
the API replica's cold misses are fetched by the worker; new versions reach its hot path
within a second."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from helpers import Service, Simulator, jobs_toml, wait_for

KEYS = tuple(f"PSCH{n:03d}" for n in range(1, 6))
PD = "pagerduty.schedule_users"
TTL = 3.0
CHECK = 1.0  # leader_check: takeover within 2 of these


class Cluster:
    """`snapshots worker` x2 and `snapshots api` on the test database, each tagged by name."""

    def __init__(
        self, tmp_path: Path, simulator: Simulator, run_service: Callable[..., Service]
    ) -> None:
        self.config = tmp_path / "jobs.toml"
        self.config.write_text(
            jobs_toml(
                simulator.url,
                ttl=f"{TTL:g}s",
                keys=KEYS,
                service=f'leader_check = "{CHECK:g}s"',
                extra='min_refresh_interval = "1s"',
            )
        )
        self.run_service = run_service
        self.started: dict[str, Service] = {}

    def start(self, role: str, name: str) -> Service:
        service = self.run_service(self.config, role=role, name=name, SNAPSHOTS_INSTANCE=name)
        self.started[name] = service
        return service

    def active(self, name: str) -> bool:
        status = httpx.get(f"{self.started[name].url}/api/v1/worker", timeout=5).json()
        return bool(status["active"])


def _upstream_by_instance(simulator: Simulator) -> dict[str, int]:
    counts: dict[str, int] = simulator.counters()["pagerduty"]["by_instance"]
    return counts


def _versions(db: psycopg.Connection[Any], key: str) -> int:
    row = db.execute(
        "SELECT count(*) FROM snapshots WHERE dataset = %s AND key = %s", (PD, key)
    ).fetchone()
    return int(row[0]) if row else 0


def _scheduled_gaps(db: psycopg.Connection[Any]) -> list[tuple[str, float]]:
    """Seconds between consecutive stored scheduled refreshes of each key."""
    rows = db.execute(
        "SELECT key, extract(epoch FROM started_at - lag(started_at) OVER"
        " (PARTITION BY key ORDER BY started_at)) FROM refresh_runs WHERE trigger = 'schedule'"
    ).fetchall()
    return [(key, float(gap)) for key, gap in rows if gap is not None]


@pytest.fixture
def cluster(tmp_path: Path, simulator: Simulator, run_service: Callable[..., Service]) -> Cluster:
    return Cluster(tmp_path, simulator, run_service)


def test_one_active_worker_serves_an_api_replica_and_a_standby_takes_over(
    cluster: Cluster, simulator: Simulator, db: psycopg.Connection[Any]
) -> None:
    cluster.start("worker", "worker-a")
    wait_for(lambda: cluster.active("worker-a"))
    cluster.start("worker", "worker-b")
    api = cluster.start("api", "api-1")
    http = httpx.Client(base_url=api.url, timeout=30)
    wait_for(lambda: all(_versions(db, key) >= 1 for key in KEYS))
    time.sleep(TTL)  # a round of scheduled refreshes

    assert not cluster.active("worker-b")
    calls = _upstream_by_instance(simulator)
    assert set(calls) == {"worker-a"}
    assert calls["worker-a"] >= len(KEYS) * 2

    # A cold miss on the API replica is fetched by the active worker and returned.
    cold = http.get(f"/api/v1/snapshots/{PD}/PSCH009")
    assert cold.status_code == 200
    assert cold.json()["version"] == 1
    assert set(_upstream_by_instance(simulator)) == {"worker-a"}

    # Each role serves its own routes: the API everything but refreshing, the worker health,
    # metrics and its budgets (the ones being spent).
    for path in ("/metrics", "/api/v1/providers", "/api/v1/datasets", "/"):
        assert http.get(path).status_code == 200, path
    worker_a = cluster.started["worker-a"].url
    assert httpx.get(f"{worker_a}/metrics").status_code == 200
    providers = httpx.get(f"{worker_a}/api/v1/providers").json()
    [pagerduty] = [p for p in providers if p["provider"] == "pagerduty"]
    assert pagerduty["budget"]["granted"] >= len(KEYS)
    assert httpx.get(f"{worker_a}/api/v1/snapshots/{PD}/PSCH001").status_code == 404

    # Forced refreshes through the API replica run on the worker and answer back.
    simulator.rotate_schedule("PSCH009")
    time.sleep(1.0)  # past min_refresh_interval since the cold miss
    waited = http.post(f"/api/v1/snapshots/{PD}/PSCH009/refresh", params={"wait": 10})
    assert waited.status_code == 200
    assert waited.json()["version"] == 2
    assert waited.headers["X-Refresh-Outcome"] == "changed"
    too_soon = http.post(f"/api/v1/snapshots/{PD}/PSCH009/refresh")
    assert too_soon.status_code == 429  # min_refresh_interval, enforced by the worker
    assert too_soon.json()["error"]["code"] == "refresh_too_soon"
    assert "Retry-After" in too_soon.headers

    # A new version written by the worker reaches the API replica's hot path within 1 s.
    for _ in range(2):  # the second read is answered from the replica's cache
        cached = http.get(f"/api/v1/snapshots/{PD}/PSCH001").json()["version"]
    simulator.rotate_schedule("PSCH001")
    wait_for(lambda: _versions(db, "PSCH001") > cached, timeout=TTL * 2)
    stored = time.monotonic()
    wait_for(
        lambda: http.get(f"/api/v1/snapshots/{PD}/PSCH001").json()["version"] > cached,
        timeout=1.0,
        interval=0.02,
    )
    assert time.monotonic() - stored <= 1.0

    # Kill the active worker: the standby takes over within two lock checks.
    cluster.started["worker-a"].process.kill()
    killed = time.monotonic()
    wait_for(lambda: cluster.active("worker-b"), timeout=10, interval=0.02)
    took = time.monotonic() - killed
    assert took <= 2 * CHECK + 0.25, f"takeover took {took:.2f}s"

    # Refreshes continue on the new leader, and no key is refreshed twice in one interval.
    before = _upstream_by_instance(simulator).get("worker-b", 0)
    wait_for(lambda: _upstream_by_instance(simulator).get("worker-b", 0) >= before + len(KEYS))
    shortest = 0.8 * 0.9 * TTL  # refresh-ahead with jitter
    assert [(key, gap) for key, gap in _scheduled_gaps(db) if gap < shortest * 0.9] == []

    # The API replica's cold misses now go to the new leader.
    assert http.get(f"/api/v1/snapshots/{PD}/PSCH010").status_code == 200
    assert set(_upstream_by_instance(simulator)) == {"worker-a", "worker-b"}
    http.close()
    assert cluster.started["api-1"].terminate() == 0
    assert cluster.started["worker-b"].terminate() == 0


def test_a_worker_that_loses_its_lock_connection_stops_before_the_standby_starts(
    cluster: Cluster, simulator: Simulator, db: psycopg.Connection[Any]
) -> None:
    cluster.start("worker", "worker-a")
    wait_for(lambda: cluster.active("worker-a"))
    cluster.start("worker", "worker-b")
    wait_for(lambda: all(_versions(db, key) >= 1 for key in KEYS))

    holder = db.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    ).fetchall()
    assert len(holder) == 1
    db.execute("SELECT pg_terminate_backend(%s)", (holder[0][0],))  # the connection drops
    dropped = time.monotonic()

    wait_for(lambda: not cluster.active("worker-a"), timeout=5, interval=0.02)
    stopped = time.monotonic() - dropped
    wait_for(lambda: cluster.active("worker-b"), timeout=10, interval=0.02)
    started = time.monotonic() - dropped
    assert stopped <= CHECK + 0.25
    assert stopped < started <= 2 * CHECK + 0.25
    assert cluster.started["worker-a"].process.poll() is None  # it stands by, ready to return

    a_before = _upstream_by_instance(simulator).get("worker-a", 0)
    wait_for(lambda: _upstream_by_instance(simulator).get("worker-b", 0) >= len(KEYS))
    assert _upstream_by_instance(simulator).get("worker-a", 0) == a_before
    assert cluster.started["worker-a"].terminate() == 0
    assert cluster.started["worker-b"].terminate() == 0
