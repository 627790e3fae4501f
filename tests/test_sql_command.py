"""`snapshots sql` and `snapshots db-url` as an analyst runs them: the real command against a
running service on embedded PostgreSQL (listening on loopback TCP too) and against
SNAPSHOTS_DATABASE_URL; read-only unless --write; output that parses; passwords kept out."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from helpers import SNAPSHOTS, Gateway, Service, child_env, free_port, jobs_toml, wait_for
from snapshots import analyst_sql
from snapshots.config import JobsConfig
from snapshots.database import libpq_url
from snapshots.sql_output import to_csv, to_json
from snapshots.uvicorn_runner import BackgroundServer

KEYS = ("PSCH001", "PSCH002", "PSCH003")
COUNT = "SELECT count(*) AS keys FROM latest_snapshots"


def snapshots(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SNAPSHOTS, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@dataclass(frozen=True)
class EmbeddedService:
    """`snapshots serve` on its own embedded PostgreSQL, with the TCP listener on."""

    service: Service
    data_dir: Path
    tcp_port: int
    env: dict[str, str]

    @property
    def postmaster(self) -> int:
        return int((self.data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])


@pytest.fixture(scope="module")
def embedded_service(simulator_server: BackgroundServer) -> Iterator[EmbeddedService]:
    """One service for the module (starting an embedded PostgreSQL costs seconds), with
    KEYS stored. Not under tmp_path: run as root, PostgreSQL's user must reach the directory."""
    data_dir = Path(tempfile.mkdtemp(prefix="snapshots-sql-"))
    config = data_dir / "jobs.toml"
    config.write_text(jobs_toml(simulator_server.url, keys=KEYS))
    tcp_port, port = free_port(), free_port()
    env = child_env(SNAPSHOTS_DATA_DIR=str(data_dir), SNAPSHOTS_EMBEDDED_TCP_PORT=str(tcp_port))
    service = Service(
        ["serve", "--config", str(config), "--port", str(port)],
        env,
        port,
        data_dir / "serve.log",
    )
    try:
        for key in KEYS:  # a read waits for the key's first fetch
            url = f"{service.url}/api/v1/snapshots/pagerduty.schedule_users/{key}"
            assert httpx.get(url, timeout=15).status_code == 200
        yield EmbeddedService(service, data_dir, tcp_port, env)
    finally:
        if service.process.poll() is None:
            service.terminate()
        pid_file = data_dir / "pgdata" / "postmaster.pid"
        if pid_file.exists():  # a failed test left it: immediate shutdown
            os.kill(int(pid_file.read_text().split("\n", 1)[0]), signal.SIGQUIT)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def stored(
    make_config: Callable[..., JobsConfig],
    start_gateway: Callable[[JobsConfig], Gateway],
    db: psycopg.Connection[Any],
) -> psycopg.Connection[Any]:
    """The test database (SNAPSHOTS_DATABASE_URL) with KEYS stored by a gateway."""
    start_gateway(make_config(keys=KEYS))
    wait_for(lambda: db.execute("SELECT count(*) FROM snapshots").fetchone() == (len(KEYS),))
    return db


def test_sql_counts_the_keys_of_a_running_embedded_service_and_leaves_it_running(
    embedded_service: EmbeddedService,
) -> None:
    postmaster = embedded_service.postmaster

    result = snapshots("sql", COUNT, env=embedded_service.env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["keys", "─" * 4, "3", "(1", "row)"]
    assert embedded_service.postmaster == postmaster  # joined, not started anew
    assert embedded_service.service.process.poll() is None
    assert httpx.get(f"{embedded_service.service.url}/readyz", timeout=5).status_code == 200


def test_sql_on_database_url_prints_csv_and_json_that_match_the_rows(
    database_url: str, stored: psycopg.Connection[Any]
) -> None:
    env = child_env(SNAPSHOTS_DATABASE_URL=database_url)
    query = "SELECT key, version, stale, item_count, payload, fetched_at FROM latest_snapshots"
    expected = stored.execute(query + " ORDER BY key").fetchall()

    count = snapshots("sql", "--csv", COUNT, env=env)
    as_csv = snapshots("sql", "--csv", query + " ORDER BY key", env=env)
    as_json = snapshots("sql", "--json", query + " ORDER BY key", env=env)

    assert count.stdout.splitlines() == ["keys", str(len(KEYS))], count.stderr
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert [tuple(r.values())[:5] for r in rows] == [e[:5] for e in expected]
    from_csv = csv_rows(as_csv.stdout)
    assert [(r["key"], int(r["version"]), r["stale"]) for r in from_csv] == [
        (r["key"], r["version"], "t" if r["stale"] else "f") for r in rows
    ]
    assert [json.loads(r["payload"]) for r in from_csv] == [r["payload"] for r in rows]
    assert [r["fetched_at"] for r in from_csv] == [r["fetched_at"] for r in rows]


def test_write_without_write_flag_is_refused_with_what_to_add(
    database_url: str, stored: psycopg.Connection[Any]
) -> None:
    result = snapshots(
        "sql", "DELETE FROM snapshots", env=child_env(SNAPSHOTS_DATABASE_URL=database_url)
    )

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("snapshots sql: cannot execute DELETE in a read-only")
    assert "add --write" in result.stderr
    assert stored.execute("SELECT count(*) FROM snapshots").fetchone() == (len(KEYS),)


@pytest.mark.parametrize(
    "sneaky",
    [
        "SELECT 1; DELETE FROM snapshots",
        "COMMIT; DELETE FROM snapshots",
        "SET TRANSACTION READ WRITE; DELETE FROM snapshots",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; COMMIT; DELETE FROM snapshots",
        "BEGIN READ WRITE; DELETE FROM snapshots",
        "SELECT 1 /* ; */; DELETE FROM snapshots -- ;",
        "SELECT $$;$$; DELETE FROM snapshots",
        "CREATE TABLE analyst_scratch (x int)",
    ],
)
def test_writes_hidden_among_statements_are_refused_and_change_nothing(
    database_url: str, stored: psycopg.Connection[Any], sneaky: str
) -> None:
    with (
        analyst_sql.connect(database_url) as conn,
        pytest.raises(analyst_sql.SqlError, match="add --write"),
    ):
        list(analyst_sql.run(conn, sneaky, write=False))

    assert stored.execute("SELECT count(*) FROM snapshots").fetchone() == (len(KEYS),)
    assert stored.execute("SELECT to_regclass('analyst_scratch')").fetchone() == (None,)


def test_write_flag_runs_maintenance_including_its_own_commit(database_url: str) -> None:
    env = child_env(SNAPSHOTS_DATABASE_URL=database_url)
    try:
        created = snapshots(
            "sql", "--write", "CREATE TABLE analyst_scratch (x int); INSERT INTO analyst_scratch"
            " VALUES (1), (2), (3)", env=env
        )  # fmt: skip
        deleted = snapshots(
            "sql", "--write", "BEGIN; DELETE FROM analyst_scratch WHERE x < 3; COMMIT", env=env
        )
        with psycopg.connect(libpq_url(database_url)) as conn:
            left = conn.execute("SELECT x FROM analyst_scratch").fetchall()
    finally:
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS analyst_scratch")

    assert created.returncode == 0, created.stderr
    assert created.stdout.split() == ["CREATE", "TABLE", "INSERT", "0", "3"]
    assert deleted.returncode == 0, deleted.stderr
    assert "DELETE 2" in deleted.stdout
    assert left == [(3,)]


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (("SELECT * FROM no_such_table",), 1, 'relation "no_such_table" does not exist'),
        (("SELEC 1",), 1, 'syntax error at or near "SELEC"'),
        (("--config", "/no/such/jobs.toml", "SELECT 1"), 2, "/no/such/jobs.toml: file not found"),
    ],
)
def test_sql_errors_are_one_line_without_traceback(
    database_url: str, args: tuple[str, ...], code: int, expected: str
) -> None:
    result = snapshots("sql", *args, env=child_env(SNAPSHOTS_DATABASE_URL=database_url))

    assert result.returncode == code
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr


def test_output_keeps_nulls_huge_numerics_bytes_and_json_exact(database_url: str) -> None:
    query = (
        "SELECT NULL::text AS nothing, '' AS empty, 'a,\"b\"' AS quoted,"
        " 123456789012345678901234567890.000000000000000000000000000001 AS huge,"
        " 'NaN'::numeric AS nan, '\\x00ff'::bytea AS bytes, '{\"a\": [1, null]}'::jsonb AS doc,"
        " true AS yes; SELECT 1 AS none WHERE false"
    )
    with analyst_sql.connect(database_url) as conn:
        first, empty = list(analyst_sql.run(conn, query, write=False))

    row = json.loads(to_json(first), parse_float=Decimal)[0]
    assert row == {
        "nothing": None,
        "empty": "",
        "quoted": 'a,"b"',
        "huge": Decimal("123456789012345678901234567890.000000000000000000000000000001"),
        "nan": "NaN",
        "bytes": "\\x00ff",
        "doc": {"a": [1, None]},
        "yes": True,
    }
    huge = str(row["huge"])
    assert to_csv(first).split("\r\n")[1] == (
        f',"","a,""b""",{huge},NaN,\\x00ff,"{{""a"": [1, null]}}",t'
    )
    assert json.loads(to_json(empty)) == []
    assert to_csv(empty) == "none\r\n"


def test_prompt_reads_statements_until_semicolon_and_survives_errors(database_url: str) -> None:
    lines = iter(["SELECT 40 + 2", "  AS answer;", "SELECT * FROM nope;", "SELECT 'x;y' AS s;"])

    def read_line(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    out = io.StringIO()
    code = analyst_sql.prompt_loop(
        database_url, write=False, fmt="csv", read_line=read_line, out=out
    )

    assert out.getvalue() == "answer\r\n42\r\ns\r\nx;y\r\n"
    assert code in (0, 1)  # 1 when the test's stdin is not a terminal: a script that failed


def test_db_url_of_database_url_hides_the_password_unless_asked(database_url: str) -> None:
    parsed = make_url(database_url)
    password = parsed.password or "ignored-by-trust-auth"  # trust auth ignores a password
    env = child_env(
        SNAPSHOTS_DATABASE_URL=parsed.set(password=password).render_as_string(hide_password=False)
    )

    hidden = snapshots("db-url", env=env)
    shown = snapshots("db-url", "--show-password", env=env)

    assert password not in hidden.stdout + hidden.stderr
    assert "--show-password" in hidden.stderr
    assert shown.stdout.startswith("postgresql://")
    with psycopg.connect(shown.stdout.strip()) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (parsed.database,)
    if parsed.password is None:  # no password needed: the hidden form connects as well
        with psycopg.connect(hidden.stdout.strip()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def _non_loopback_address() -> str | None:
    """An address of this machine other than loopback (IPv4), if it has one."""
    try:
        words = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    except OSError:
        return None
    return next((w for w in words if "." in w and not w.startswith("127.")), None)


def test_embedded_tcp_listener_takes_the_password_on_loopback_only(
    embedded_service: EmbeddedService,
) -> None:
    password_file = embedded_service.data_dir / "pgdata.password"
    password = password_file.read_text().strip()
    port = embedded_service.tcp_port

    hidden = snapshots("db-url", env=embedded_service.env)
    shown = snapshots("db-url", "--show-password", env=embedded_service.env)

    assert hidden.stdout.strip() == f"postgresql://postgres@127.0.0.1:{port}/snapshots"
    assert shown.stdout.strip() == f"postgresql://postgres:{password}@127.0.0.1:{port}/snapshots"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    with psycopg.connect(shown.stdout.strip()) as conn:
        assert conn.execute(COUNT).fetchone() == (len(KEYS),)
        assert str(conn.execute("SELECT inet_server_addr()").fetchone()[0]) == "127.0.0.1"  # type: ignore[index]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"postgresql://postgres:wrong@127.0.0.1:{port}/snapshots")
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/snapshots")  # no password
    other = _non_loopback_address()
    if other is not None:
        with pytest.raises(psycopg.OperationalError, match="refused"):
            psycopg.connect(shown.stdout.strip().replace("127.0.0.1", other), connect_timeout=5)
    logs = embedded_service.service.log.read_text()
    logs += (embedded_service.data_dir / "pgdata" / "log").read_text()
    assert password not in logs + hidden.stdout + hidden.stderr


def test_sql_started_server_is_stopped_when_sql_exits() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="snapshots-sql-"))
    try:
        result = snapshots(
            "sql", "--json", "SELECT 1 AS one", env=child_env(SNAPSHOTS_DATA_DIR=str(data_dir))
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == [{"one": 1}]
        assert (data_dir / "pgdata" / "PG_VERSION").exists()
        assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
