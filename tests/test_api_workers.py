"""`snapshots api --workers N` (issue 18): several processes behind one port, each with its own
hot cache kept current by the change feed, next to a `snapshots worker`. Which process answered
is told by the response's X-Request-Id (a random per-process prefix and a counter) and, on
/metrics, by `snapshots_instance_info`; both processes serve reads, and a new version stored by
the worker reaches every process's hot path within a bound. `serve` and `worker` refuse
`--workers` > 1, and `api` refuses values out of 1..64."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from helpers import SNAPSHOTS, Service, Simulator, child_env, free_port, jobs_toml, wait_for
from snapshots.database import libpq_url

PD = "pagerduty.schedule_users"
KEY = "PSCH001"
SNAPSHOT = f"/api/v1/snapshots/{PD}/{KEY}"
PROCESSES = 2
NEW_VERSION_WITHIN = 2.0  # seconds from the refresh's answer until every process serves it
INSTANCE_INFO = re.compile(r'^snapshots_instance_info\{instance="([^"]+)",role="api"\} 1\.0$', re.M)


def _process(response: httpx.Response) -> str:
    """The answering process: the per-process prefix of its X-Request-Id (middleware.py)."""
    request_id = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{24}", request_id), request_id
    return request_id[:16]


def _read(url: str) -> tuple[str, int]:
    """One read of the key on a new connection (so the kernel may hand it to either process):
    (the process that answered, the version it served)."""
    response = httpx.get(f"{url}{SNAPSHOT}", timeout=10)
    assert response.status_code == 200, response.text
    return _process(response), int(response.json()["version"])


def _versions_stored(db: psycopg.Connection[Any]) -> int:
    row = db.execute(
        "SELECT count(*) FROM snapshots WHERE dataset = %s AND key = %s", (PD, KEY)
    ).fetchone()
    return int(row[0]) if row else 0


def _instance_names(url: str) -> dict[str, str]:
    """The instance name in `snapshots_instance_info` of each process behind `url` (by the
    request-id prefix of the process that answered), once every process has answered."""
    instances: dict[str, str] = {}

    def all_scraped() -> bool:
        response = httpx.get(f"{url}/metrics", timeout=10)
        assert response.status_code == 200
        [instance] = INSTANCE_INFO.findall(response.text)
        instances[_process(response)] = instance
        return len(instances) == PROCESSES

    wait_for(all_scraped, timeout=30, interval=0.01)
    return instances


def test_each_api_process_serves_reads_and_the_change_feed_reaches_every_hot_cache(
    tmp_path: Path,
    simulator: Simulator,
    run_service: Callable[..., Service],
    db: psycopg.Connection[Any],
) -> None:
    config = tmp_path / "jobs.toml"
    config.write_text(
        jobs_toml(
            simulator.url,
            keys=(KEY,),
            service='leader_check = "1s"',
            extra='min_refresh_interval = "1ms"',
        )
    )
    run_service(config, role="worker", name="worker", SNAPSHOTS_INSTANCE="worker")
    api = run_service(
        config,
        role="api",
        name="api",
        args=("--workers", str(PROCESSES)),
        SNAPSHOTS_INSTANCE="api",
    )
    wait_for(lambda: _versions_stored(db) >= 1, timeout=30)

    # Many reads, each on its own connection: both processes answer, with the same version
    # (after its first read each process serves the key from its own hot cache).
    reads: dict[str, list[int]] = defaultdict(list)

    def both_answered() -> bool:
        process, version = _read(api.url)
        reads[process].append(version)
        return len(reads) == PROCESSES and all(len(v) >= 3 for v in reads.values())

    wait_for(both_answered, timeout=30, interval=0.01)
    assert len(reads) == PROCESSES, f"processes seen: {sorted(reads)}"
    [old] = {version for versions in reads.values() for version in versions}
    assert old == 1

    # /metrics, answered by either process, names it: two distinct `api-<pid>` instances, the
    # same two processes (by X-Request-Id) that served the reads.
    instances = _instance_names(api.url)
    assert set(instances) == set(reads)
    assert len(set(instances.values())) == PROCESSES
    assert all(re.fullmatch(r"api-\d+", name) for name in instances.values()), instances

    # Change the upstream and force a refresh: the API asks the worker, which stores version 2.
    simulator.mutate("pagerduty", KEY)
    refreshed = httpx.post(f"{api.url}{SNAPSHOT}/refresh", params={"wait": 10}, timeout=30)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers["X-Refresh-Outcome"] == "changed"
    assert refreshed.json()["version"] == old + 1
    stored = time.monotonic()
    assert _versions_stored(db) == 2

    # Every process serves version 2 within the bound, and never version 1 once it has.
    first_new: dict[str, float] = {}
    after: dict[str, list[int]] = defaultdict(list)

    def all_current() -> bool:
        process, version = _read(api.url)
        after[process].append(version)
        if version == old + 1:
            first_new.setdefault(process, time.monotonic() - stored)
        else:
            assert process not in first_new, f"{instances[process]} went back to v{version}"
        return len(first_new) == PROCESSES and all(after[p].count(old + 1) >= 3 for p in first_new)

    wait_for(all_current, timeout=15, interval=0.01)
    assert set(first_new) == set(reads)
    slowest = max(first_new.values())
    assert slowest <= NEW_VERSION_WITHIN, f"a process served v{old} for {slowest:.2f}s: {after}"
    assert all(version == old + 1 for versions in after.values() for version in versions[-3:])

    # SIGTERM stops the supervisor and both processes cleanly.
    assert api.terminate() == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{api.url}/readyz", timeout=2)


def test_api_processes_share_the_embedded_postgres_their_supervisor_keeps(
    tmp_path: Path, simulator: Simulator, services: list[Service]
) -> None:
    """Without SNAPSHOTS_DATABASE_URL, `api --workers 2` starts (or joins) the embedded server
    once, in its supervising process; both processes and a `snapshots worker` on the same data
    directory use that one database, and it outlives the API while the worker still uses it."""
    config = tmp_path / "jobs.toml"
    config.write_text(jobs_toml(simulator.url))
    data_dir = tmp_path / "data"
    env = child_env(SNAPSHOTS_DATA_DIR=str(data_dir))

    def start(role: str, *args: str) -> Service:
        port = free_port()
        command = [role, "--config", str(config), "--port", str(port), *args]
        service = Service(command, env, port, tmp_path / f"{role}.log")
        services.append(service)
        return service

    api = start("api", "--workers", str(PROCESSES))
    worker = start("worker")

    # A key no one has read: the first read is a cold miss the worker fetches; then both
    # processes serve that one stored version.
    reads: dict[str, set[int]] = defaultdict(set)

    def both_answered() -> bool:
        process, version = _read(api.url)
        reads[process].add(version)
        return len(reads) == PROCESSES

    wait_for(both_answered, timeout=30, interval=0.01)
    assert dict(reads) == {process: {1} for process in reads}
    assert simulator.requests() == 1

    pgdata = data_dir / "pgdata"
    assert (pgdata / "postmaster.pid").exists()
    assert api.terminate() == 0
    assert (pgdata / "postmaster.pid").exists()  # the worker still holds it
    assert httpx.get(f"{worker.url}/readyz", timeout=5).status_code == 200
    assert worker.terminate() == 0
    assert not (pgdata / "postmaster.pid").exists()  # stopped by its last holder


def test_api_processes_stop_when_their_supervisor_is_killed(
    tmp_path: Path, simulator: Simulator, run_service: Callable[..., Service], database_url: str
) -> None:
    """`kill -9` of `snapshots api --workers 2` leaves no process holding the port or the
    database: each gets SIGTERM from the kernel and stops."""
    config = tmp_path / "jobs.toml"
    config.write_text(jobs_toml(simulator.url))
    api = run_service(config, role="api", name="api", args=("--workers", str(PROCESSES)))
    assert httpx.get(f"{api.url}/readyz", timeout=5).status_code == 200

    def connections() -> int:
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            ).fetchone()
        return int(row[0]) if row else 0

    assert connections() >= PROCESSES  # each process's LISTEN connection at least
    api.process.kill()
    api.process.wait(10)

    def port_closed() -> bool:
        try:
            httpx.get(f"{api.url}/readyz", timeout=1)
        except httpx.HTTPError:
            return True
        return False

    wait_for(port_closed, timeout=15)
    wait_for(lambda: connections() == 0, timeout=15)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["api", "--workers", "0"], "must be from 1 to 64 (processes serving the API), got 0"),
        (["api", "--workers", "65"], "must be from 1 to 64 (processes serving the API), got 65"),
        (["api", "--workers", "two"], "expected a whole number, got 'two'"),
        (
            ["serve", "--workers", "2"],
            "serve runs a worker too and cannot run 2 processes; for several API processes "
            "run `snapshots api --workers 2` plus one `snapshots worker`",
        ),
        (
            ["worker", "--workers", "3"],
            "a worker is one process (one worker is active at a time); start further "
            "`snapshots worker` processes as standbys, and "
            "`snapshots api --workers 3` for several API processes",
        ),
    ],
)
def test_bad_workers_values_exit_2_with_the_reason(
    tmp_path: Path, args: list[str], message: str
) -> None:
    # No database is started: the arguments are refused before anything runs.
    result = subprocess.run(
        [*SNAPSHOTS, *args],
        env=child_env(SNAPSHOTS_DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"argument --workers: {message}" in " ".join(result.stderr.split())
    assert list(tmp_path.iterdir()) == []


def test_help_says_which_commands_take_workers() -> None:
    def usage(command: str) -> str:
        result = subprocess.run(
            [*SNAPSHOTS, command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0
        return " ".join(result.stdout.split())

    assert "--workers N processes serving the API on the one port, 1 to 64 (default 1)" in usage(
        "api"
    )
    for command in ("serve", "worker"):
        assert "--workers 1 only 1:" in usage(command)
        assert "run `snapshots api --workers N` plus `snapshots worker`" in usage(command)


def test_api_processes_keep_distinct_names_under_a_long_instance_name(
    tmp_path: Path, simulator: Simulator, run_service: Callable[..., Service]
) -> None:
    """`SNAPSHOTS_INSTANCE` at the 64-character limit (a long pod name): each process's name
    still ends with its own pid, so /metrics tells the processes apart."""
    config = tmp_path / "jobs.toml"
    config.write_text(jobs_toml(simulator.url, keys=(KEY,)))
    base = "a" * 64
    api = run_service(
        config, role="api", name="api", args=("--workers", str(PROCESSES)), SNAPSHOTS_INSTANCE=base
    )
    instances = _instance_names(api.url)
    names = set(instances.values())
    assert len(names) == PROCESSES, instances
    assert all(re.fullmatch(r"a+-\d+", name) and len(name) <= 64 for name in names), names


def test_a_process_failing_at_startup_makes_the_supervisor_exit_non_zero() -> None:
    """uvicorn stops every process when one fails at startup and returns as if asked to;
    `supervise` (what `snapshots api --workers N` runs) says so and exits non-zero."""
    script = (
        "from snapshots.uvicorn_runner import supervise\n"
        f"supervise('failing_startup_app:factory', 2, '127.0.0.1', {free_port()})\n"
    )
    tests = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0, done.stderr[-2000:]
    assert "ProcessesFailed" in done.stderr
    assert "failed to start" in done.stderr
