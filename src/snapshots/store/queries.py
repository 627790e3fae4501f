"""Every query of the service, each write in one transaction; the only code that writes SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from snapshots.store.records import (
    SNAPSHOT_FIELDS,
    DatasetRow,
    FetchedPayload,
    KeySource,
    KeyState,
    Latest,
    Outcome,
    RunTiming,
    StoredRefresh,
    key_state_from_row,
    snapshot_from_row,
)
from snapshots.store.tables import dataset_keys, datasets, refresh_runs, snapshots


def _json_serializer(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def create_engine(url: str) -> AsyncEngine:
    """An async engine on psycopg 3 that encodes JSONB with msgspec."""
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=5,
        json_serializer=_json_serializer,
        json_deserializer=msgspec.json.decode,
        connect_args={"connect_timeout": 5},
    )


class Store:
    """Every read and write of snapshots, keys and refresh runs, each write in one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

    async def sync_datasets(self, rows: Iterable[DatasetRow], now: datetime) -> None:
        """Record the datasets this process serves (provider, TTL, enabled and why not)."""
        async with self.engine.begin() as conn:
            for row in rows:
                values = {
                    "name": row.name,
                    "provider": row.provider,
                    "ttl_seconds": row.ttl_seconds,
                    "enabled": row.enabled,
                    "disabled_reason": row.disabled_reason,
                    "updated_at": now,
                }
                stmt = insert(datasets).values(values)
                await conn.execute(
                    stmt.on_conflict_do_update(index_elements=[datasets.c.name], set_=values)
                )

    async def register_keys(
        self, dataset: str, keys: Sequence[str], source: KeySource, now: datetime
    ) -> None:
        """Register keys to keep warm; existing keys keep their state."""
        if not keys:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(dataset_keys)
                .values(
                    [
                        {"dataset": dataset, "key": k, "source": source, "registered_at": now}
                        for k in keys
                    ]
                )
                .on_conflict_do_nothing()
            )

    async def key_states(self, dataset: str | None = None) -> list[KeyState]:
        """Every registered key (of one dataset, or all), for the scheduler and status."""
        query = select(dataset_keys).order_by(dataset_keys.c.dataset, dataset_keys.c.key)
        if dataset is not None:
            query = query.where(dataset_keys.c.dataset == dataset)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [key_state_from_row(r) for r in rows]

    async def latest(self, dataset: str, key: str) -> Latest | None:
        """The key's state and latest good snapshot; None when the key is not registered."""
        query = (
            select(dataset_keys, *(snapshots.c[f].label(f"s_{f}") for f in SNAPSHOT_FIELDS))
            .select_from(
                dataset_keys.outerjoin(
                    snapshots, snapshots.c.id == dataset_keys.c.latest_snapshot_id
                )
            )
            .where(dataset_keys.c.dataset == dataset, dataset_keys.c.key == key)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        snapshot = snapshot_from_row(row, prefix="s_") if row.s_id is not None else None
        return Latest(state=key_state_from_row(row), snapshot=snapshot)

    async def record_success(
        self,
        dataset: str,
        key: str,
        fetched: FetchedPayload,
        timing: RunTiming,
        next_refresh_at: datetime,
        source: KeySource,
    ) -> StoredRefresh:
        """Store a successful fetch in one transaction: a new version, or a newer verified_at.

        The key row is locked first, so two writers of one key serialize and version numbers
        never collide; a key not yet registered is registered here with `source`.
        """
        now = timing.finished_at
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(dataset_keys)
                .values(dataset=dataset, key=key, source=source, registered_at=now)
                .on_conflict_do_nothing()
            )
            current = (
                await conn.execute(
                    select(
                        dataset_keys.c.latest_snapshot_id,
                        snapshots.c.content_hash,
                        snapshots.c.version,
                    )
                    .select_from(
                        dataset_keys.outerjoin(
                            snapshots, snapshots.c.id == dataset_keys.c.latest_snapshot_id
                        )
                    )
                    .where(dataset_keys.c.dataset == dataset, dataset_keys.c.key == key)
                    .with_for_update(of=dataset_keys)
                )
            ).one()
            if (
                current.latest_snapshot_id is not None
                and current.content_hash == fetched.content_hash
            ):
                outcome: Outcome = "unchanged"
                snapshot_id: int = current.latest_snapshot_id
                await conn.execute(
                    update(snapshots).where(snapshots.c.id == snapshot_id).values(verified_at=now)
                )
            else:
                outcome = "changed"
                snapshot_id = await self._insert_version(conn, dataset, key, fetched, now)
            await conn.execute(
                update(dataset_keys)
                .where(dataset_keys.c.dataset == dataset, dataset_keys.c.key == key)
                .values(
                    latest_snapshot_id=snapshot_id,
                    next_refresh_at=next_refresh_at,
                    last_refresh_at=now,
                    last_outcome=outcome,
                    last_error=None,
                    consecutive_failures=0,
                )
            )
            run_id = await self._insert_run(conn, dataset, key, timing, outcome, None, snapshot_id)
        return StoredRefresh(run_id=run_id, outcome=outcome, snapshot_id=snapshot_id)

    async def record_failure(
        self,
        dataset: str,
        key: str,
        error: str,
        timing: RunTiming,
        next_refresh_at: datetime | None,
    ) -> StoredRefresh:
        """Record a failed refresh; the latest snapshot stays what it was."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(dataset_keys)
                .where(dataset_keys.c.dataset == dataset, dataset_keys.c.key == key)
                .values(
                    next_refresh_at=next_refresh_at,
                    last_refresh_at=timing.finished_at,
                    last_outcome="failed",
                    last_error=error,
                    consecutive_failures=dataset_keys.c.consecutive_failures + 1,
                )
            )
            run_id = await self._insert_run(conn, dataset, key, timing, "failed", error, None)
        return StoredRefresh(run_id=run_id, outcome="failed", snapshot_id=None)

    @staticmethod
    async def _insert_version(
        conn: AsyncConnection, dataset: str, key: str, fetched: FetchedPayload, now: datetime
    ) -> int:
        next_version = (
            select(func.coalesce(func.max(snapshots.c.version), 0) + 1)
            .where(snapshots.c.dataset == dataset, snapshots.c.key == key)
            .scalar_subquery()
        )
        result = await conn.execute(
            insert(snapshots)
            .values(
                dataset=dataset,
                key=key,
                version=next_version,
                content_hash=fetched.content_hash,
                payload=fetched.payload,
                item_count=fetched.item_count,
                fetched_at=now,
                verified_at=now,
            )
            .returning(snapshots.c.id)
        )
        return int(result.scalar_one())

    @staticmethod
    async def _insert_run(
        conn: AsyncConnection,
        dataset: str,
        key: str,
        timing: RunTiming,
        outcome: Outcome,
        error: str | None,
        snapshot_id: int | None,
    ) -> int:
        result = await conn.execute(
            insert(refresh_runs)
            .values(
                dataset=dataset,
                key=key,
                trigger=timing.trigger,
                outcome=outcome,
                started_at=timing.started_at,
                finished_at=timing.finished_at,
                upstream_requests=timing.upstream_requests,
                error=error,
                snapshot_id=snapshot_id,
            )
            .returning(refresh_runs.c.id)
        )
        return int(result.scalar_one())
