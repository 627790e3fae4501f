"""Process and database faults: kill -9 at random points never leaves a half-written or
inconsistent row, and a PostgreSQL restart is answered with 503s (not hangs or 500s) and
recovered from without a restart of the service."""

from __future__ import annotations

import os
import random
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from helpers import (
    Service,
    Simulator,
    canonical_hash,
    free_port,
    jobs_toml,
    rotating,
    wait_for,
)
from snapshots.database import embedded_postgres, libpq_url, migrate

KEYS = tuple(f"PSCH{n:03d}" for n in range(1, 11))
PD = "pagerduty.schedule_users"


def _check_consistent(db: psycopg.Connection[Any]) -> int:
    """Every invariant a crash must not break; returns how many versions are stored."""
    rows = db.execute(
        "SELECT id, dataset, key, version, content_hash, payload, item_count FROM snapshots"
    ).fetchall()
    for _, dataset, key, version, content_hash, payload, item_count in rows:
        assert canonical_hash(payload) == content_hash, f"{dataset} {key} v{version}"
        assert item_count == (len(payload) if isinstance(payload, list) else 1)
    gaps = db.execute(
        "SELECT dataset, key FROM snapshots GROUP BY dataset, key"
        " HAVING min(version) <> 1 OR max(version) <> count(DISTINCT version)"
    ).fetchall()
    assert gaps == []  # versions run 1..n: none lost, none half-inserted
    orphans = db.execute(
        "SELECT s.id FROM snapshots s WHERE NOT EXISTS (SELECT 1 FROM refresh_runs r"
        " WHERE r.snapshot_id = s.id AND r.outcome = 'changed')"
    ).fetchall()
    assert orphans == []  # each version was stored together with the run that fetched it
    stale_pointers = db.execute(
        "SELECT k.key FROM dataset_keys k LEFT JOIN snapshots s ON s.id = k.latest_snapshot_id"
        " WHERE k.latest_snapshot_id IS NOT NULL AND s.version <> (SELECT max(version)"
        " FROM snapshots m WHERE m.dataset = k.dataset AND m.key = k.key)"
    ).fetchall()
    assert stale_pointers == []
    undue = db.execute(
        "SELECT key FROM dataset_keys WHERE source = 'config' AND next_refresh_at IS NULL"
    ).fetchall()
    assert undue == []  # due times intact
    return len(rows)


@pytest.fixture
def mutations(simulator: Simulator) -> Iterator[None]:
    with rotating(simulator, KEYS):
        yield


@pytest.mark.usefixtures("mutations")
def test_kill_9_at_random_points_leaves_every_row_consistent(
    tmp_path: Path,
    db: psycopg.Connection[Any],
    simulator: Simulator,
    run_service: Callable[..., Service],
) -> None:
    config = tmp_path / "jobs.toml"
    config.write_text(jobs_toml(simulator.url, ttl="1s", keys=KEYS))
    simulator.set_latency(0.05)
    port = free_port()
    kills = random.Random(20261126)

    stored = 0
    for attempt in range(10):
        service = run_service(config, port=port, name=f"run-{attempt}")
        time.sleep(kills.uniform(0.2, 2.0))  # refreshes are running at random stages
        service.process.kill()
        service.process.wait(10)
        now = _check_consistent(db)
        assert now >= stored
        stored = now

    assert stored > len(KEYS)  # the kills interrupted a service that was writing versions
    simulator.set_latency(0)
    restarted = run_service(config, port=port, name="last")
    for key in KEYS:
        response = httpx.get(f"{restarted.url}/api/v1/snapshots/{PD}/{key}", timeout=30)
        assert response.status_code == 200
        assert response.headers["ETag"] == f'"{canonical_hash(response.json()["data"])}"'
    restarted.terminate()
    _check_consistent(db)


class RestartablePostgres:
    """An embedded PostgreSQL this test may stop and start again on the same socket."""

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

        self.server = get_server(data_dir / "pgdata", cleanup_mode="stop")

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), waited for until the process is gone."""
        pid = self.server.get_pid()
        assert pid is not None
        os.kill(pid, signal.SIGINT)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=30)

    def start(self) -> None:
        self.server.ensure_postgres_running()


def test_database_restart_answers_503_then_recovers_on_its_own(
    tmp_path: Path, simulator: Simulator, run_service: Callable[..., Service]
) -> None:
    with embedded_postgres(tmp_path / "db") as url:
        migrate(url)
        postgres = RestartablePostgres(tmp_path / "db")
        config = tmp_path / "jobs.toml"
        config.write_text(jobs_toml(simulator.url, keys=("PSCH001",)))
        service = run_service(config, database=url, args=("--no-migrate",))
        http = httpx.Client(base_url=service.url, timeout=15)
        cached = f"/api/v1/snapshots/{PD}/PSCH001"
        wait_for(lambda: http.get(cached).status_code == 200)
        assert http.get(cached).headers["X-Snapshot-Version"] == "1"  # now on the hot path

        postgres.stop()
        began = time.monotonic()
        ready = http.get("/readyz")
        cold = http.get(f"/api/v1/snapshots/{PD}/PSCH002")
        history = http.get(f"{cached}/history")
        listing = http.get("/api/v1/datasets")
        hot = http.get(cached)
        answered_in = time.monotonic() - began

        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "not_ready"
        for response in (cold, history, listing):
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] in ("database_unavailable", "unavailable")
            assert "Retry-After" in response.headers
            assert "Traceback" not in response.text
        assert hot.status_code == 200  # the hot path answers from memory while it lasts
        assert answered_in < 15  # bounded: no request hangs on the dead database

        postgres.start()
        back = time.monotonic()
        wait_for(lambda: http.get("/readyz").status_code == 200, timeout=10)
        recovered_in = time.monotonic() - back
        assert recovered_in <= 10
        assert http.get(f"/api/v1/snapshots/{PD}/PSCH002").status_code == 200
        assert http.get(f"{cached}/history").status_code == 200
        refreshed = http.post(f"{cached}/refresh", params={"wait": 10})
        assert refreshed.status_code in (200, 429)
        assert service.terminate() == 0
        http.close()
        with psycopg.connect(libpq_url(url)) as conn:
            assert conn.execute("SELECT count(*) FROM snapshots").fetchone() == (2,)
