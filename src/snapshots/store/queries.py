"""Every query of the service, each write in one transaction; the only code that writes SQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import delete, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from snapshots.errors import Fenced
from snapshots.shrink import ShrinkGuard
from snapshots.store import channels
from snapshots.store.records import (
    SNAPSHOT_FIELDS,
    DatasetRow,
    DatasetSummary,
    FailureWrite,
    Fencing,
    FetchedPayload,
    KeySource,
    KeyState,
    Latest,
    Outcome,
    RefreshWrite,
    RunTiming,
    SnapshotRecord,
    StoredRefresh,
    SuccessWrite,
    key_state_from_row,
    snapshot_from_row,
)
from snapshots.store.tables import dataset_keys, datasets, refresh_runs, snapshots, worker_leader


def _json_serializer(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def create_engine(url: str, *, idle_in_transaction_seconds: float | None = None) -> AsyncEngine:
    """An async engine on psycopg 3 that encodes JSONB with msgspec.

    `idle_in_transaction_seconds`: PostgreSQL ends a session that sits that long inside a
    transaction (a worker stopped mid-write), releasing its locks, among them the share lock
    on the leader row that would otherwise hold up the next leader's epoch.
    """
    connect_args: dict[str, object] = {"connect_timeout": 5}
    if idle_in_transaction_seconds is not None:
        timeout_ms = int(idle_in_transaction_seconds * 1000)
        connect_args["options"] = f"-c idle_in_transaction_session_timeout={timeout_ms}"
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=5,
        json_serializer=_json_serializer,
        json_deserializer=msgspec.json.decode,
        connect_args=connect_args,
    )


UNFENCED = Fencing()

VERIFY_UNCHANGED = text(
    """
    WITH input AS (
        SELECT * FROM unnest(
            CAST(:datasets AS text[]), CAST(:keys AS text[]), CAST(:hashes AS text[]),
            CAST(:run_ids AS bigint[]), CAST(:triggers AS text[]),
            CAST(:started AS timestamptz[]), CAST(:finished AS timestamptz[]),
            CAST(:requests AS integer[]), CAST(:next_at AS timestamptz[])
        ) AS i(dataset, key, content_hash, run_id, trigger, started_at, finished_at,
               upstream_requests, next_refresh_at)
    ),
    locked AS (
        SELECT k.dataset, k.key, k.latest_snapshot_id
        FROM dataset_keys k JOIN input i ON k.dataset = i.dataset AND k.key = i.key
        ORDER BY k.dataset, k.key
        FOR UPDATE OF k
    ),
    matched AS (
        SELECT i.*, l.latest_snapshot_id AS snapshot_id
        FROM locked l
        JOIN input i ON i.dataset = l.dataset AND i.key = l.key
        JOIN snapshots s ON s.id = l.latest_snapshot_id AND s.content_hash = i.content_hash
    ),
    verified AS (
        UPDATE snapshots s SET verified_at = m.finished_at
        FROM matched m WHERE s.id = m.snapshot_id
    ),
    refreshed AS (
        UPDATE dataset_keys k
        SET next_refresh_at = m.next_refresh_at, last_refresh_at = now(),
            last_outcome = 'unchanged', last_error = NULL, consecutive_failures = 0,
            consecutive_rejections = 0, rejected_hash = NULL
        FROM matched m WHERE k.dataset = m.dataset AND k.key = m.key
    )
    INSERT INTO refresh_runs (id, dataset, key, trigger, outcome, started_at, finished_at,
                              upstream_requests, error, snapshot_id, instance)
    SELECT run_id, dataset, key, trigger, 'unchanged', started_at, finished_at,
           upstream_requests, NULL, snapshot_id, CAST(:instance AS text)
    FROM matched
    RETURNING id, dataset, key, snapshot_id, pg_notify(
        CAST(:channel AS text),
        json_build_object(
            'dataset', dataset, 'key', key, 'run_id', id, 'outcome', outcome,
            'snapshot_id', snapshot_id
        )::text
    )
    """
)
"""The unchanged writes of a batch in one statement (see `Store._verify_unchanged`)."""


async def _check_epoch(conn: AsyncConnection, fencing: Fencing) -> None:
    """Fenced unless `fencing.epoch` is the leader's. The share lock on the leader row makes
    a new leader's epoch increment wait for this transaction, so no write of an old leader
    lands after a new one took over."""
    if fencing.epoch is None:
        return
    current = (
        await conn.execute(
            select(worker_leader.c.epoch).where(worker_leader.c.id == 1).with_for_update(read=True)
        )
    ).scalar_one_or_none()
    if current != fencing.epoch:
        raise Fenced(
            f"this worker's leadership (epoch {fencing.epoch}) was taken over (epoch {current});"
            " its result is not stored"
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
                    "kind": row.kind,
                    "definition": row.definition,
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
        return (await self.latest_many([(dataset, key)]))[0]

    async def latest_many(self, keys: Sequence[tuple[str, str]]) -> list[Latest | None]:
        """`latest` of many (dataset, key)s in one query, in their order."""
        since_refresh = func.extract("epoch", func.now() - dataset_keys.c.last_refresh_at)
        query = (
            select(
                dataset_keys,
                since_refresh.label("refreshed_seconds_ago"),
                *(snapshots.c[f].label(f"s_{f}") for f in SNAPSHOT_FIELDS),
            )
            .select_from(
                dataset_keys.outerjoin(
                    snapshots, snapshots.c.id == dataset_keys.c.latest_snapshot_id
                )
            )
            .where(tuple_(dataset_keys.c.dataset, dataset_keys.c.key).in_(list(keys)))
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found: dict[tuple[str, str], Latest] = {}
        for row in rows:
            snapshot = snapshot_from_row(row, prefix="s_") if row.s_id is not None else None
            ago = row.refreshed_seconds_ago
            found[(row.dataset, row.key)] = Latest(
                key_state_from_row(row), snapshot, float(ago) if ago is not None else None
            )
        return [found.get(k) for k in keys]

    async def record_success(
        self,
        dataset: str,
        key: str,
        fetched: FetchedPayload,
        timing: RunTiming,
        next_refresh_at: datetime,
        source: KeySource,
        guard: ShrinkGuard | None = None,
        accept_shrink: bool = False,
        *,
        fencing: Fencing = UNFENCED,
    ) -> StoredRefresh:
        """Store a successful fetch in one transaction: a new version, or a newer verified_at.

        The key row is locked first, so two writers of one key serialize and version numbers
        never collide; a key not yet registered is registered here with `source`. A fetch the
        shrink `guard` objects to is recorded as `rejected` and not served, unless the same
        content was rejected `accept_after` times in a row or `accept_shrink` is set.
        Fenced (nothing written) when `fencing.epoch` is no longer the leader's.
        """
        write = SuccessWrite(
            dataset, key, fetched, timing, next_refresh_at, source, guard, accept_shrink
        )
        async with self.engine.begin() as conn:
            await _check_epoch(conn, fencing)
            return await self._success(conn, write, fencing)

    async def record_failure(
        self,
        dataset: str,
        key: str,
        error: str,
        timing: RunTiming,
        next_refresh_at: datetime | None,
        *,
        fencing: Fencing = UNFENCED,
    ) -> StoredRefresh:
        """Record a failed refresh; the latest snapshot stays what it was.

        A key that is not registered stays unregistered (`registered` is False in the result).
        """
        write = FailureWrite(dataset, key, error, timing, next_refresh_at)
        async with self.engine.begin() as conn:
            await _check_epoch(conn, fencing)
            return await self._failure(conn, write, fencing)

    async def record_batch(
        self, writes: Sequence[RefreshWrite], *, fencing: Fencing = UNFENCED
    ) -> list[StoredRefresh]:
        """Store many refreshes (of distinct keys) in one transaction: all of them or none.

        Each is stored as `record_success` or `record_failure` would store it alone, with the
        same outcome. Successes whose content equals the key's latest snapshot (`unchanged`,
        the common case) are verified together by one statement; the rest one by one.
        Fenced (nothing written) when `fencing.epoch` is no longer the leader's.
        """
        if len({(w.dataset, w.key) for w in writes}) != len(writes):
            raise ValueError("a batch of refresh writes holds one key twice")
        async with self.engine.begin() as conn:
            await _check_epoch(conn, fencing)
            successes = [w for w in writes if isinstance(w, SuccessWrite)]
            verified = await self._verify_unchanged(conn, successes, fencing) if successes else {}
            results: list[StoredRefresh] = []
            for write in writes:
                stored = verified.get((write.dataset, write.key))
                if stored is None:
                    if isinstance(write, SuccessWrite):
                        stored = await self._success(conn, write, fencing)
                    else:
                        stored = await self._failure(conn, write, fencing)
                results.append(stored)
        return results

    @staticmethod
    async def _verify_unchanged(
        conn: AsyncConnection, writes: Sequence[SuccessWrite], fencing: Fencing
    ) -> dict[tuple[str, str], StoredRefresh]:
        """One statement for every write whose content hash is its key's latest snapshot's:
        lock the keys (in key order, as every multi-key write does), move the snapshots'
        verified_at, mark the keys refreshed and insert their `unchanged` runs, each with its
        change notification. The shrink guard has nothing to say about equal content.
        Returns what was stored, by (dataset, key); other writes are left untouched."""
        rows = await conn.execute(
            VERIFY_UNCHANGED,
            {
                "datasets": [w.dataset for w in writes],
                "keys": [w.key for w in writes],
                "hashes": [w.fetched.content_hash for w in writes],
                "run_ids": [w.timing.run_id for w in writes],
                "triggers": [w.timing.trigger for w in writes],
                "started": [w.timing.started_at for w in writes],
                "finished": [w.timing.finished_at for w in writes],
                "requests": [w.timing.upstream_requests for w in writes],
                "next_at": [w.next_refresh_at for w in writes],
                "instance": fencing.instance,
                "channel": channels.CHANGES,
            },
        )
        return {
            (row.dataset, row.key): StoredRefresh(
                run_id=int(row.id), outcome="unchanged", snapshot_id=int(row.snapshot_id)
            )
            for row in rows
        }

    async def _success(
        self, conn: AsyncConnection, write: SuccessWrite, fencing: Fencing
    ) -> StoredRefresh:
        """`record_success` inside a transaction whose epoch is checked."""
        dataset, key, fetched, timing = write.dataset, write.key, write.fetched, write.timing
        next_refresh_at, source = write.next_refresh_at, write.source
        guard, accept_shrink = write.guard, write.accept_shrink
        now = timing.finished_at
        await conn.execute(
            insert(dataset_keys)
            .values(dataset=dataset, key=key, source=source, registered_at=now)
            .on_conflict_do_nothing()
        )
        current = (
            await conn.execute(
                select(
                    dataset_keys.c.latest_snapshot_id,
                    dataset_keys.c.consecutive_rejections,
                    dataset_keys.c.rejected_hash,
                    snapshots.c.content_hash,
                    snapshots.c.item_count,
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
        where = (dataset_keys.c.dataset == dataset, dataset_keys.c.key == key)
        shrink = guard.reason(current.item_count, fetched.item_count) if guard else None
        note = None
        if shrink is not None and not accept_shrink:
            repeats = (
                current.consecutive_rejections + 1
                if current.rejected_hash == fetched.content_hash
                else 1
            )
            assert guard is not None
            if repeats < guard.accept_after:
                note = (
                    f"{shrink}; not served (seen {repeats} of {guard.accept_after} times in a row"
                    " needed to accept it, or refresh with accept_shrink=true)"
                )
                await conn.execute(
                    update(dataset_keys)
                    .where(*where)
                    .values(
                        next_refresh_at=next_refresh_at,
                        last_refresh_at=func.now(),
                        last_outcome="rejected",
                        last_error=note,
                        consecutive_rejections=repeats,
                        rejected_hash=fetched.content_hash,
                    )
                )
                run_id = await self._insert_run(
                    conn, dataset, key, timing, "rejected", note, None, fencing
                )
                return StoredRefresh(
                    run_id=run_id,
                    outcome="rejected",
                    snapshot_id=current.latest_snapshot_id,
                    note=note,
                )
            note = f"{shrink}; accepted after {repeats} identical refreshes"
        elif shrink is not None:
            note = f"{shrink}; accepted by an operator (accept_shrink)"
        if current.latest_snapshot_id is not None and current.content_hash == fetched.content_hash:
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
            .where(*where)
            .values(
                latest_snapshot_id=snapshot_id,
                next_refresh_at=next_refresh_at,
                last_refresh_at=func.now(),
                last_outcome=outcome,
                last_error=None,
                consecutive_failures=0,
                consecutive_rejections=0,
                rejected_hash=None,
            )
        )
        run_id = await self._insert_run(
            conn, dataset, key, timing, outcome, note, snapshot_id, fencing
        )
        return StoredRefresh(run_id=run_id, outcome=outcome, snapshot_id=snapshot_id, note=note)

    async def _failure(
        self, conn: AsyncConnection, write: FailureWrite, fencing: Fencing
    ) -> StoredRefresh:
        """`record_failure` inside a transaction whose epoch is checked."""
        dataset, key, error, timing = write.dataset, write.key, write.error, write.timing
        updated = await conn.execute(
            update(dataset_keys)
            .where(dataset_keys.c.dataset == dataset, dataset_keys.c.key == key)
            .values(
                next_refresh_at=write.next_refresh_at,
                last_refresh_at=func.now(),
                last_outcome="failed",
                last_error=error,
                consecutive_failures=dataset_keys.c.consecutive_failures + 1,
            )
        )
        run_id = await self._insert_run(conn, dataset, key, timing, "failed", error, None, fencing)
        return StoredRefresh(
            run_id=run_id, outcome="failed", snapshot_id=None, registered=bool(updated.rowcount)
        )

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
        fencing: Fencing,
    ) -> int:
        # The change notification rides on the insert (no extra round trip) and is delivered
        # at commit, so replicas refetch exactly when the change is visible.
        change = channels.Change(dataset, key, timing.run_id, outcome, snapshot_id)
        await conn.execute(
            insert(refresh_runs)
            .values(
                id=timing.run_id,
                dataset=dataset,
                key=key,
                trigger=timing.trigger,
                outcome=outcome,
                started_at=timing.started_at,
                finished_at=timing.finished_at,
                upstream_requests=timing.upstream_requests,
                error=error,
                snapshot_id=snapshot_id,
                instance=fencing.instance,
            )
            .returning(func.pg_notify(channels.CHANGES, channels.encode(change)))
        )
        return timing.run_id

    async def newest_run_id(self, dataset: str, key: str) -> int | None:
        """The id of the key's newest stored run (runs of one key are sequential)."""
        query = select(func.max(refresh_runs.c.id)).where(
            refresh_runs.c.dataset == dataset, refresh_runs.c.key == key
        )
        async with self.engine.connect() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return None if value is None else int(value)

    async def allocate_run_id(self) -> int:
        """A refresh run id, taken before the run so it can be handed out; the row comes at the end.

        No row exists until the refresh is stored, so a crash leaves a gap in ids, never a
        half-written run.
        """
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(func.nextval(func.pg_get_serial_sequence("refresh_runs", "id")))
            )
            return int(result.scalar_one())

    async def allocate_run_ids(self, count: int) -> list[int]:
        """`count` run ids in one query, ascending (see `allocate_run_id`)."""
        nextval = func.nextval(func.pg_get_serial_sequence("refresh_runs", "id"))
        query = select(nextval).select_from(func.generate_series(1, count))
        async with self.engine.connect() as conn:
            return sorted(int(v) for v in (await conn.execute(query)).scalars())

    async def run(self, run_id: int) -> dict[str, Any] | None:
        """A stored refresh run by id."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(refresh_runs).where(refresh_runs.c.id == run_id))
            ).first()
        return None if row is None else dict(row._mapping)

    async def demand_key_count(self, dataset: str) -> int:
        """How many keys of `dataset` were registered by reads (not by jobs.toml)."""
        query = select(func.count()).where(
            dataset_keys.c.dataset == dataset, dataset_keys.c.source == "demand"
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def key_counts(self) -> dict[str, int]:
        """Registered keys per dataset."""
        query = select(dataset_keys.c.dataset, func.count()).group_by(dataset_keys.c.dataset)
        async with self.engine.connect() as conn:
            return {str(d): int(n) for d, n in (await conn.execute(query)).all()}

    async def requests_per_refresh(self, since: datetime) -> dict[str, float]:
        """Average upstream requests of a successful refresh per dataset, from runs since `since`."""
        query = (
            select(refresh_runs.c.dataset, func.avg(refresh_runs.c.upstream_requests))
            .where(
                refresh_runs.c.started_at >= since,
                refresh_runs.c.outcome.in_(("changed", "unchanged", "rejected")),
            )
            .group_by(refresh_runs.c.dataset)
        )
        async with self.engine.connect() as conn:
            return {str(d): float(n) for d, n in (await conn.execute(query)).all()}

    async def touch_reads(self, reads: Mapping[tuple[str, str], datetime]) -> None:
        """Record when keys were last read (batched by the API, not written on every read)."""
        if not reads:
            return
        async with self.engine.begin() as conn:
            for (dataset, key), at in sorted(reads.items()):
                await conn.execute(
                    update(dataset_keys)
                    .where(dataset_keys.c.dataset == dataset, dataset_keys.c.key == key)
                    .values(
                        last_read_at=func.greatest(
                            func.coalesce(dataset_keys.c.last_read_at, at), at
                        )
                    )
                )

    async def retire_idle_keys(self, dataset: str, unread_since: datetime) -> list[str]:
        """Unregister on-demand keys not read since `unread_since`; their history stays."""
        last_seen = func.coalesce(dataset_keys.c.last_read_at, dataset_keys.c.registered_at)
        query = (
            delete(dataset_keys)
            .where(
                dataset_keys.c.dataset == dataset,
                dataset_keys.c.source == "demand",
                last_seen < unread_since,
            )
            .returning(dataset_keys.c.key)
        )
        async with self.engine.begin() as conn:
            return sorted(str(k) for k in (await conn.execute(query)).scalars())

    async def snapshot_ages(self) -> dict[str, list[float]]:
        """Seconds since each registered key's latest snapshot was verified, per dataset."""
        age = func.extract("epoch", func.now() - snapshots.c.verified_at)
        query = select(dataset_keys.c.dataset, age).join(
            snapshots, snapshots.c.id == dataset_keys.c.latest_snapshot_id
        )
        ages: dict[str, list[float]] = {}
        async with self.engine.connect() as conn:
            for dataset, seconds in (await conn.execute(query)).all():
                ages.setdefault(str(dataset), []).append(float(seconds))
        return ages

    async def dataset_summaries(self) -> dict[str, DatasetSummary]:
        """Per dataset: registered keys, how many are fresh, stale (or never fetched), failing."""
        age = func.extract("epoch", func.now() - snapshots.c.verified_at)
        stale = (snapshots.c.id.is_(None)) | (age > datasets.c.ttl_seconds)
        failing = dataset_keys.c.last_outcome.in_(("failed", "rejected"))
        query = (
            select(
                dataset_keys.c.dataset,
                func.count(),
                func.count().filter(~stale),
                func.count().filter(stale),
                func.count().filter(failing),
            )
            .select_from(
                dataset_keys.join(datasets, datasets.c.name == dataset_keys.c.dataset).outerjoin(
                    snapshots, snapshots.c.id == dataset_keys.c.latest_snapshot_id
                )
            )
            .group_by(dataset_keys.c.dataset)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {str(d): DatasetSummary(int(k), int(f), int(s), int(x)) for d, k, f, s, x in rows}

    async def keys_of(self, dataset: str) -> list[Latest]:
        """Every registered key of `dataset` with its state and latest snapshot (without payload)."""
        columns = [snapshots.c[f].label(f"s_{f}") for f in SNAPSHOT_FIELDS if f != "payload"]
        query = (
            select(dataset_keys, *columns)
            .select_from(
                dataset_keys.outerjoin(
                    snapshots, snapshots.c.id == dataset_keys.c.latest_snapshot_id
                )
            )
            .where(dataset_keys.c.dataset == dataset)
            .order_by(dataset_keys.c.key)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Latest(
                state=key_state_from_row(row),
                snapshot=snapshot_from_row(row, "s_", payload=None)
                if row.s_id is not None
                else None,
            )
            for row in rows
        ]

    async def history(
        self,
        dataset: str,
        key: str,
        *,
        since: datetime | None,
        until: datetime | None,
        before_version: int | None,
        limit: int,
        include_data: bool,
    ) -> list[SnapshotRecord]:
        """Versions of a key, newest first: fetched within [since, until), older than `before_version`."""
        columns = [snapshots.c[f] for f in SNAPSHOT_FIELDS if include_data or f != "payload"]
        query = select(*columns).where(snapshots.c.dataset == dataset, snapshots.c.key == key)
        if since is not None:
            query = query.where(snapshots.c.fetched_at >= since)
        if until is not None:
            query = query.where(snapshots.c.fetched_at < until)
        if before_version is not None:
            query = query.where(snapshots.c.version < before_version)
        query = query.order_by(snapshots.c.version.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if include_data:
            return [snapshot_from_row(row, "") for row in rows]
        return [snapshot_from_row(row, "", payload=None) for row in rows]

    async def prune_versions(
        self, dataset: str, superseded_before: datetime, batch: int = 500
    ) -> int:
        """Delete up to `batch` versions of `dataset` replaced by a newer one before the cutoff.

        The latest version of every key is never deleted. Small batches keep each transaction
        (and its locks) short, so reads are never held up.
        """
        newer = snapshots.alias("newer")
        doomed = (
            select(snapshots.c.id)
            .where(
                snapshots.c.dataset == dataset,
                select(newer.c.id)
                .where(
                    newer.c.dataset == snapshots.c.dataset,
                    newer.c.key == snapshots.c.key,
                    newer.c.version > snapshots.c.version,
                    newer.c.fetched_at < superseded_before,
                )
                .exists(),
                snapshots.c.id.not_in(
                    select(dataset_keys.c.latest_snapshot_id).where(
                        dataset_keys.c.latest_snapshot_id.is_not(None)
                    )
                ),
            )
            .limit(batch)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(snapshots).where(snapshots.c.id.in_(doomed.scalar_subquery()))
            )
        return int(result.rowcount or 0)

    async def prune_runs(self, finished_before: datetime, batch: int = 1000) -> int:
        """Delete up to `batch` refresh runs that finished before the cutoff."""
        doomed = (
            select(refresh_runs.c.id)
            .where(refresh_runs.c.finished_at < finished_before)
            .limit(batch)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(refresh_runs).where(refresh_runs.c.id.in_(doomed.scalar_subquery()))
            )
        return int(result.rowcount or 0)
