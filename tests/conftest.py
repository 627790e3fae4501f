"""Fixtures: a real migrated PostgreSQL, the simulator over real HTTP, and a running gateway."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import Gateway, Service, Simulator, child_env, free_port, jobs_toml, sim_providers
from snapshots.api.app import create_app
from snapshots.config import JobsConfig, load_jobs
from snapshots.database import embedded_postgres, libpq_url, migrate, sqlalchemy_url
from snapshots.logs import configure_logging
from snapshots.simulator import create_simulator_app
from snapshots.uvicorn_runner import BackgroundServer, start_in_thread

pytest_plugins = ["pytester"]  # the testing kit is tested as another project would use it

# One database per pytest-xdist worker, so that workers sharing SNAPSHOTS_TEST_DATABASE_URL's
# server never truncate each other's tables (without xdist: "snapshots_test").
TEST_DATABASE = "snapshots_test" + (
    f"_{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else ""
)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def _postgres_server() -> Iterator[tuple[str, str]]:
    """(URL of a PostgreSQL server, where it came from), by the rule in DEVELOPERS.md."""
    url = os.environ.get("SNAPSHOTS_TEST_DATABASE_URL")
    if url:
        yield sqlalchemy_url(url), "SNAPSHOTS_TEST_DATABASE_URL"
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:17-alpine", driver="psycopg") as container:
            yield sqlalchemy_url(container.get_connection_url()), "testcontainers"
        return
    with (
        tempfile.TemporaryDirectory(prefix="snapshots-test-") as data_dir,
        embedded_postgres(Path(data_dir)) as url,
    ):
        yield url, "embedded-postgres"


@pytest.fixture(scope="session", autouse=True)
def _service_logging() -> None:
    """Route the service's structured events through stdlib logging, as `snapshots` does."""
    configure_logging(level="DEBUG")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated database for this test session (created fresh on the server, dropped after)."""
    with _postgres_server() as (server_url, _source):
        admin = libpq_url(server_url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
        from sqlalchemy.engine import make_url

        url = make_url(server_url).set(database=TEST_DATABASE).render_as_string(hide_password=False)
        migrate(url)
        yield url
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An empty database (tables truncated) and a plain connection for asserting on rows."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            "TRUNCATE refresh_runs, dataset_keys, snapshots, datasets, refresh_requests, worker_leader,"
            " provider_states"
            " RESTART IDENTITY CASCADE"
        )
        yield conn


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[BackgroundServer]:
    server = start_in_thread(create_simulator_app())
    yield server
    server.stop()


@pytest.fixture
def simulator(simulator_server: BackgroundServer) -> Iterator[Simulator]:
    sim = Simulator(simulator_server.url)
    sim.http.post("/_sim/reset").raise_for_status()
    yield sim
    sim.http.close()


@pytest.fixture
def make_config(tmp_path: Path, simulator: Simulator) -> Callable[..., JobsConfig]:
    """Write a jobs.toml pointing at the simulator and load it (env overrides ignored)."""

    def make(**kwargs: Any) -> JobsConfig:
        path = tmp_path / "jobs.toml"
        path.write_text(jobs_toml(simulator.url, **kwargs))
        return load_jobs(path, env={})

    return make


@pytest.fixture
def every_dataset_config(tmp_path: Path, simulator: Simulator) -> Callable[..., JobsConfig]:
    """A jobs.toml with all six built-in datasets on the simulator (PSCH001 registered).

    `service`, `api` and `datasets` add TOML to those tables, `providers` to each named
    provider's table, `each_dataset` to every dataset's table; providers in `without_token`
    get no token (their datasets are disabled).
    """

    def make(
        datasets: str = "",
        api: str = "",
        service: str = "",
        without_token: tuple[str, ...] = (),
        providers: dict[str, str] | None = None,
        each_dataset: str = 'min_refresh_interval = "1ms"',
    ) -> JobsConfig:
        extra = providers or {}
        jira = 'deployment = "server"\nbudget = "50/1s"\n' + extra.get("jira", "")
        tables = sim_providers(
            simulator.url,
            pagerduty=extra.get("pagerduty", ""),
            github=extra.get("github", ""),
            jira=jira,
            without_token=without_token,
        )
        path = tmp_path / "jobs.toml"
        path.write_text(
            f"""
[service]
{service}

[api]
stale_if_error = "1h"
{api}

{tables}
[datasets."pagerduty.schedule_users"]
keys = ["PSCH001"]
{each_dataset}
[datasets."pagerduty.escalation_policy"]
{each_dataset}
[datasets."github.repo"]
{each_dataset}
[datasets."github.repo_collaborators"]
{each_dataset}
[datasets."jira.project"]
{each_dataset}
[datasets."jira.project_issues"]
{each_dataset}
{datasets}
"""
        )
        return load_jobs(path, env={})

    return make


@pytest.fixture
def start_gateway(
    database_url: str, db: psycopg.Connection[Any]
) -> Iterator[Callable[[JobsConfig], Gateway]]:
    started: list[Gateway] = []

    def start(config: JobsConfig) -> Gateway:
        gateway = Gateway(start_in_thread(create_app(config, database_url)))
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def run_service(
    tmp_path: Path, database_url: str, services: list[Service]
) -> Callable[..., Service]:
    """Start `snapshots ROLE --config CONFIG` against the test database (or `database`), on
    `port` (default: a free one), logging to `<tmp>/<name>.log`; `env` adds variables."""

    def run(
        config: Path,
        *,
        role: str = "serve",
        name: str = "serve",
        port: int | None = None,
        database: str | None = None,
        args: tuple[str, ...] = (),
        **env: str,
    ) -> Service:
        port = port or free_port()
        service = Service(
            [role, "--config", str(config), "--port", str(port), *args],
            child_env(SNAPSHOTS_DATABASE_URL=database or database_url, **env),
            port,
            tmp_path / f"{name}.log",
        )
        services.append(service)
        return service

    return run


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """`snapshots` processes a test starts; any still running at the end are killed."""
    started: list[Service] = []
    yield started
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()
