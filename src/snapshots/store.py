"""SQLAlchemy tables and every query of the service; the only module that writes SQL."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

Trigger = Literal["schedule", "demand", "miss"]
Outcome = Literal["changed", "unchanged", "failed", "rejected"]
KeySource = Literal["config", "demand"]

TZ = TIMESTAMP(timezone=True)
metadata = MetaData()

datasets = Table(
    "datasets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("provider", Text, nullable=False),
    Column("ttl_seconds", Float, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text),
    Column("updated_at", TZ, nullable=False),
)

dataset_keys = Table(
    "dataset_keys",
    metadata,
    Column("dataset", Text, ForeignKey("datasets.name", ondelete="CASCADE"), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("source", Text, CheckConstraint("source IN ('config', 'demand')"), nullable=False),
    Column("registered_at", TZ, nullable=False),
    Column("next_refresh_at", TZ),
    Column("latest_snapshot_id", BigInteger, ForeignKey("snapshots.id", ondelete="SET NULL")),
    Column("last_refresh_at", TZ),
    Column("last_outcome", Text),
    Column("last_error", Text),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dataset", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("fetched_at", TZ, nullable=False),
    Column("verified_at", TZ, nullable=False),
    UniqueConstraint("dataset", "key", "version", name="snapshots_dataset_key_version_key"),
    Index("snapshots_dataset_key_fetched_at_idx", "dataset", "key", "fetched_at"),
)

refresh_runs = Table(
    "refresh_runs",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dataset", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column(
        "trigger",
        Text,
        CheckConstraint("trigger IN ('schedule', 'demand', 'miss')"),
        nullable=False,
    ),
    Column(
        "outcome",
        Text,
        CheckConstraint("outcome IN ('changed', 'unchanged', 'failed', 'rejected')"),
        nullable=False,
    ),
    Column("started_at", TZ, nullable=False),
    Column("finished_at", TZ, nullable=False),
    Column("upstream_requests", Integer, nullable=False),
    Column("error", Text),
    Column("snapshot_id", BigInteger, ForeignKey("snapshots.id", ondelete="SET NULL")),
    Index("refresh_runs_dataset_key_started_at_idx", "dataset", "key", "started_at"),
)


def content_hash(payload: Any) -> str:
    """SHA-256 of the payload's canonical JSON (sorted keys), so equal content hashes equally."""
    return hashlib.sha256(msgspec.json.encode(payload, order="sorted")).hexdigest()


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


@dataclass(frozen=True)
class SnapshotRecord:
    """One stored version of a (dataset, key)."""

    id: int
    dataset: str
    key: str
    version: int
    content_hash: str
    payload: Any
    item_count: int
    fetched_at: datetime
    verified_at: datetime


@dataclass(frozen=True)
class KeyState:
    """Refresh state of one registered (dataset, key)."""

    dataset: str
    key: str
    source: KeySource
    next_refresh_at: datetime | None
    last_refresh_at: datetime | None
    last_outcome: Outcome | None
    last_error: str | None


@dataclass(frozen=True)
class Latest:
    """What a reader gets: the key's state and its latest good snapshot (None before the first)."""

    state: KeyState
    snapshot: SnapshotRecord | None


@dataclass(frozen=True)
class FetchedPayload:
    """A successful fetch, ready to store."""

    payload: Any
    content_hash: str
    item_count: int

    @classmethod
    def of(cls, payload: Any) -> FetchedPayload:
        count = len(payload) if isinstance(payload, list) else 1
        return cls(payload=payload, content_hash=content_hash(payload), item_count=count)


@dataclass(frozen=True)
class RunTiming:
    """When a refresh ran and how many upstream requests it made."""

    trigger: Trigger
    started_at: datetime
    finished_at: datetime
    upstream_requests: int


@dataclass(frozen=True)
class StoredRefresh:
    """The result of recording a refresh: its run id, outcome and the snapshot now latest."""

    run_id: int
    outcome: Outcome
    snapshot_id: int | None


def _snapshot(row: Any, prefix: str) -> SnapshotRecord:
    """A SnapshotRecord from a result row whose snapshot columns carry `prefix`."""
    mapping = row._mapping
    return SnapshotRecord(**{f: mapping[prefix + f] for f in _SNAPSHOT_FIELDS})


def _key_state(row: Any) -> KeyState:
    mapping = row._mapping
    return KeyState(**{f: mapping[f] for f in _KEY_STATE_FIELDS})


_SNAPSHOT_FIELDS = tuple(f.name for f in dataclasses.fields(SnapshotRecord))
_KEY_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(KeyState))


@dataclass(frozen=True)
class DatasetRow:
    """What the datasets table records of a registered dataset."""

    name: str
    provider: str
    ttl_seconds: float
    enabled: bool
    disabled_reason: str | None


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
        return [_key_state(r) for r in rows]

    async def latest(self, dataset: str, key: str) -> Latest | None:
        """The key's state and latest good snapshot; None when the key is not registered."""
        query = (
            select(dataset_keys, *(snapshots.c[f].label(f"s_{f}") for f in _SNAPSHOT_FIELDS))
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
        snapshot = _snapshot(row, prefix="s_") if row.s_id is not None else None
        return Latest(state=_key_state(row), snapshot=snapshot)

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
