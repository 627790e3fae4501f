"""A frozen PostgreSQL (every server process stopped with SIGSTOP: connections stay open and
nothing answers) must not take the hot path down, nor make health checks hang."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from helpers import Service, Simulator, jobs_toml, wait_for
from snapshots.database import embedded_postgres, migrate

PD = "pagerduty.schedule_users"


@contextlib.contextmanager
def frozen(data_dir: Path) -> Iterator[None]:
    """SIGSTOP the postmaster of `data_dir` and every backend; SIGCONT them on the way out."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(
        ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
    ).stdout.split()
    pids = [postmaster, *(int(p) for p in children)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _timed(http: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = http.get(path)
    return response, time.monotonic() - began


def test_frozen_database_hot_reads_are_served_and_health_checks_answer_within_2s(
    tmp_path: Path, simulator: Simulator, run_service: Callable[..., Service]
) -> None:
    with embedded_postgres(tmp_path / "db") as url:
        migrate(url)
        config = tmp_path / "jobs.toml"
        config.write_text(
            jobs_toml(
                simulator.url,
                ttl="3s",
                keys=("PSCH001",),
                extra='min_refresh_interval = "1ms"',
            )
        )
        service = run_service(config, database=url, args=("--no-migrate",))
        http = httpx.Client(base_url=service.url, timeout=30)
        cached = f"/api/v1/snapshots/{PD}/PSCH001"
        wait_for(lambda: http.get(cached).status_code == 200)
        etag = http.get(cached).headers["ETag"]
        # A refresh stored after the last read supersedes the cached entry, as happens all
        # the time: the next read would go to the database.
        run = http.post(f"{cached}/refresh").json()["run_id"]
        wait_for(lambda: http.get(f"/api/v1/runs/{run}").json()["status"] != "running")

        with frozen(tmp_path / "db" / "pgdata"):
            time.sleep(3.5)  # past the TTL; refreshes now hang on the database
            ready, ready_took = _timed(http, "/readyz")
            hot, hot_took = _timed(http, cached)
            bare, _ = _timed(http, "/api/v1/pagerduty/schedules/PSCH001/users")
            conditional = http.get(cached, headers={"If-None-Match": etag})
            metrics, metrics_took = _timed(http, "/metrics")
            cold, cold_took = _timed(http, f"/api/v1/snapshots/{PD}/PSCH003")

        assert ready.status_code == 503
        assert ready_took < 2.5
        assert hot.status_code == 200, hot.text
        assert hot_took < 3.0
        assert hot.headers["ETag"] == etag
        body = hot.json()
        # It says how old it is: past its TTL, so stale, with the age in the body.
        assert body["freshness"]["stale"] is True
        assert hot.headers["X-Snapshot-Stale"] == "true"
        assert body["freshness"]["age_seconds"] >= 3
        assert bare.status_code == 200
        assert bare.headers["ETag"] == etag
        assert conditional.status_code == 304
        assert metrics.status_code == 200
        assert metrics_took < 2.5
        assert "\nsnapshots_ready 0.0\n" in metrics.text  # what the readiness alert watches
        assert cold.status_code == 503, cold.text
        assert cold.json()["error"]["code"] in ("database_unavailable", "unavailable")
        assert cold_took < 12

        wait_for(lambda: http.get("/readyz").status_code == 200, timeout=20)
        assert "\nsnapshots_ready 1.0\n" in http.get("/metrics").text
        assert http.get(cached).status_code == 200
        assert service.terminate() == 0
        http.close()
