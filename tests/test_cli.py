"""The `snapshots` command as an operator runs it: real processes, real ports, real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from helpers import SNAPSHOTS, Service, Simulator, child_env, free_port, jobs_toml
from snapshots.database import alembic_config, libpq_url


def test_help_lists_every_command() -> None:
    result = subprocess.run([*SNAPSHOTS, "--help"], capture_output=True, text=True, check=True)

    for command in ("serve", "api", "worker", "migrate", "simulate", "demo", "status", "refresh"):
        assert f"    {command} " in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[providers.pagerduty]\ntokn = "x"\n', "providers.pagerduty: unknown key 'tokn'"),
        ('[datasets."pagerduty.schedule_users"]\nttl = "soon"\n', "ttl: bad duration 'soon'"),
        ('[datasets."jenkins.jobs"]\n', "unknown provider 'jenkins'"),
    ],
)
def test_broken_jobs_file_exits_2_with_one_line(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "jobs.toml"
    config.write_text(text)

    result = subprocess.run(
        [*SNAPSHOTS, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(config) in lines[0]
    assert expected in lines[0]


def test_serve_on_database_url_serves_snapshots_and_stops_on_sigterm(
    tmp_path: Path,
    db: psycopg.Connection[Any],
    simulator: Simulator,
    run_service: Callable[..., Service],
) -> None:
    config = tmp_path / "jobs.toml"
    config.write_text(jobs_toml(simulator.url, keys=("PSCH001",)))
    service = run_service(config)

    body = httpx.get(
        f"{service.url}/api/v1/snapshots/pagerduty.schedule_users/PSCH001", timeout=15
    ).json()

    assert body["key"] == "PSCH001"
    assert body["data"]
    assert all("email" in user for user in body["data"])
    assert set(body["freshness"]) == {
        "fetched_at",
        "verified_at",
        "age_seconds",
        "ttl_seconds",
        "stale",
        "next_refresh_at",
        "last_error",
    }
    assert db.execute("SELECT count(*) FROM snapshots WHERE key = 'PSCH001'").fetchone() == (1,)
    assert service.terminate() == 0


def test_demo_runs_on_embedded_postgres_and_stops_it_on_exit(
    tmp_path: Path, services: list[Service]
) -> None:
    port, simulator_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    service = Service(
        ["demo", "--port", str(port), "--simulator-port", str(simulator_port)],
        child_env(SNAPSHOTS_DATA_DIR=str(data_dir)),
        port,
        tmp_path / "demo.log",
    )
    services.append(service)

    response = httpx.get(
        f"{service.url}/api/v1/snapshots/pagerduty.schedule_users/PSCH002", timeout=15
    )

    assert response.status_code == 200
    assert response.json()["data"]
    demo_dir = data_dir / "demo"
    assert f"SNAPSHOTS_DATA_DIR={demo_dir} snapshots sql 'SELECT" in service.log.read_text()
    pgdata = data_dir / "demo" / "pgdata"
    assert (pgdata / "postmaster.pid").exists()
    assert service.terminate() == 0
    assert not (pgdata / "postmaster.pid").exists()  # the embedded server was stopped cleanly


def test_migrate_creates_the_schema_in_an_empty_database(database_url: str) -> None:
    admin = libpq_url(database_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "snapshots_migrate_test"')
        conn.execute('CREATE DATABASE "snapshots_migrate_test"')
    empty = (
        make_url(database_url)
        .set(database="snapshots_migrate_test")
        .render_as_string(hide_password=False)
    )
    try:
        result = subprocess.run(
            [*SNAPSHOTS, "migrate"],
            capture_output=True,
            text=True,
            env=child_env(SNAPSHOTS_DATABASE_URL=empty),
            timeout=60,
        )
        with psycopg.connect(libpq_url(empty)) as conn:
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            tables = {
                r[0]
                for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "snapshots_migrate_test" WITH (FORCE)')

    assert result.returncode == 0, result.stderr
    assert "revision head" in result.stdout
    assert version == (ScriptDirectory.from_config(alembic_config(empty)).get_current_head(),)
    assert {"datasets", "dataset_keys", "snapshots", "refresh_runs"} <= tables


def _slow_cold_read(url: str, results: list[httpx.Response | Exception]) -> threading.Thread:
    def read() -> None:
        try:
            results.append(
                httpx.get(f"{url}/api/v1/snapshots/pagerduty.schedule_users/PSCH009", timeout=30)
            )
        except Exception as exc:  # the reader's view of a killed service
            results.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    return thread


def test_sigterm_lets_the_refresh_in_flight_finish_then_exits_cleanly(
    tmp_path: Path,
    db: psycopg.Connection[Any],
    simulator: Simulator,
    run_service: Callable[..., Service],
) -> None:
    config = tmp_path / "jobs.toml"
    config.write_text(jobs_toml(simulator.url))
    service = run_service(config)
    simulator.set_latency(1.5)
    results: list[httpx.Response | Exception] = []
    reader = _slow_cold_read(service.url, results)
    time.sleep(0.5)  # the fetch is now in flight at the simulator

    code = service.terminate()
    reader.join(30)

    assert code == 0
    response = results[0]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200
    assert db.execute("SELECT trigger, outcome FROM refresh_runs").fetchall() == [
        ("miss", "changed")
    ]


def test_kill_9_mid_refresh_leaves_nothing_partial_and_a_restart_recovers(
    tmp_path: Path,
    db: psycopg.Connection[Any],
    simulator: Simulator,
    run_service: Callable[..., Service],
) -> None:
    config = tmp_path / "jobs.toml"
    config.write_text(jobs_toml(simulator.url))
    service = run_service(config, name="a")
    simulator.set_latency(1.5)
    results: list[httpx.Response | Exception] = []
    reader = _slow_cold_read(service.url, results)
    time.sleep(0.5)

    service.process.kill()
    service.process.wait(10)
    reader.join(30)

    assert isinstance(results[0], Exception)  # the reader lost its connection
    assert db.execute("SELECT count(*) FROM snapshots").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM refresh_runs").fetchone() == (0,)
    simulator.set_latency(0)
    restarted = run_service(config, port=service.port, name="b")
    response = httpx.get(
        f"{restarted.url}/api/v1/snapshots/pagerduty.schedule_users/PSCH009", timeout=30
    )
    assert response.status_code == 200
    assert response.json()["version"] == 1


def test_plan_prints_demand_against_the_budget_before_anything_runs(tmp_path: Path) -> None:
    keys = ", ".join(f'"PABC{n:03d}"' for n in range(10))
    config = tmp_path / "jobs.toml"
    config.write_text(
        '[providers.pagerduty]\nbudget = "60/1h"\n'  # no token: planned all the same
        f'[datasets."pagerduty.schedule_users"]\nttl = "1m"\nkeys = [{keys}]\n'
    )

    text = subprocess.run(
        [*SNAPSHOTS, "plan", "--config", str(config)],
        capture_output=True,
        text=True,
        env=child_env(),
        check=True,
    ).stdout
    as_json = subprocess.run(
        [*SNAPSHOTS, "plan", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        env=child_env(),
        check=True,
    ).stdout

    assert "pagerduty: demand 750/h of budget 60/h" in text
    assert "SHORT by 696/h" in text
    assert "pagerduty.schedule_users" in text
    plan = json.loads(as_json)["pagerduty"]
    assert plan["demand_per_hour"] == 750
    assert plan["stretch"] == pytest.approx(750 / 54)
