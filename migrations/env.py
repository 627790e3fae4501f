"""Alembic environment: runs migrations on the URL `snapshots migrate` passes, under an advisory lock."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool, text

from snapshots.store import metadata

# Any constant works; it only has to be the same for every replica migrating this database.
MIGRATION_LOCK_ID = 0x736E6170


def _url() -> str:
    url = context.config.attributes.get("database_url") or os.environ.get("SNAPSHOTS_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: run `snapshots migrate` or set SNAPSHOTS_DATABASE_URL")
    return str(url)


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=metadata)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run `snapshots migrate`")
run_migrations_online()
