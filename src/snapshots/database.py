"""Where the database comes from (a URL, or an embedded PostgreSQL) and how its schema is migrated."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import make_url

from snapshots.embedded import held_server
from snapshots.errors import ConfigError

EMBEDDED_DATABASE = "snapshots"


def sqlalchemy_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the psycopg 3 driver SQLAlchemy should use."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(
            "SNAPSHOTS_DATABASE_URL is not a valid URL: use postgresql+psycopg://user:password@host:port/db"
        ) from None
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            f"SNAPSHOTS_DATABASE_URL must point at PostgreSQL (postgresql+psycopg://...), got {parsed.drivername!r}"
        )
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The same URL as plain libpq understands it (for psycopg.connect)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """The URL with its password hidden, safe to log."""
    return make_url(url).render_as_string(hide_password=True)


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, tcp_port: int = 0) -> Iterator[str]:
    """Start (or join) an embedded PostgreSQL in `data_dir`/pgdata and yield its URL. On exit it
    is stopped unless another live process still uses it (the rules are in snapshots.embedded).
    `tcp_port`: a server started here also listens on 127.0.0.1 at that port (0: socket only)."""
    with held_server(data_dir / "pgdata", tcp_port) as server:
        with psycopg.connect(server.uri("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE}"')
        yield sqlalchemy_url(server.uri(EMBEDDED_DATABASE))


def migrations_dir() -> Path:
    """The alembic environment: inside the installed package, or `migrations/` of a source checkout."""
    packaged = Path(__file__).parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = sqlalchemy_url(url)
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the schema to `revision` (alembic holds an advisory lock so replicas take turns)."""
    command.upgrade(alembic_config(url), revision)
