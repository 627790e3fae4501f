"""Refresh results stored in batches (issue 18): many keys in one transaction, each with the
outcome it would have had alone; unchanged keys verified together; a fenced batch stores
nothing; a concurrent burst of writes, reads and run ids shares round trips."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from snapshots.clock import utcnow
from snapshots.coordination.fence import Fenced
from snapshots.shrink import ShrinkGuard
from snapshots.store import (
    Coalescer,
    FailureWrite,
    Fencing,
    FetchedPayload,
    RefreshWrite,
    RunTiming,
    Store,
    StoredRefresh,
    SuccessWrite,
    WriteBatcher,
    channels,
    create_engine,
)

PD = "pagerduty.schedule_users"


def _prepare(db: psycopg.Connection[Any], epoch: int = 3) -> None:
    db.execute(
        "INSERT INTO worker_leader (id, instance, heartbeat_at, epoch) VALUES (1, 'w', now(), %s)",
        (epoch,),
    )
    db.execute(
        "INSERT INTO datasets (name, provider, ttl_seconds, enabled, updated_at)"
        " VALUES (%s, 'pagerduty', 300, true, now())",
        (PD,),
    )


def _keys(n: int) -> list[str]:
    return [f"PSCH{i:03d}" for i in range(n)]


async def _success(
    store: Store, key: str, payload: Any, now: datetime, guard: ShrinkGuard | None = None
) -> SuccessWrite:
    timing = RunTiming("schedule", now, now, 1, await store.allocate_run_id())
    return SuccessWrite(
        PD, key, FetchedPayload.of(payload), timing, now + timedelta(minutes=5), "config", guard
    )


async def _failure(store: Store, key: str, now: datetime) -> FailureWrite:
    timing = RunTiming("schedule", now, now, 1, await store.allocate_run_id())
    return FailureWrite(PD, key, "pagerduty answered 500", timing, now + timedelta(seconds=30))


def _run(database_url: str, body: Any) -> Any:
    async def main() -> Any:
        store = Store(create_engine(database_url))
        try:
            return await body(store)
        finally:
            await store.engine.dispose()

    return asyncio.run(main())


def test_a_batch_of_many_keys_stores_one_version_per_change_and_verifies_the_rest(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    _prepare(db)
    keys = _keys(60)
    fencing = Fencing(3, "worker-a")
    first = utcnow()

    async def fill(store: Store) -> list[StoredRefresh]:
        writes = [await _success(store, k, [{"id": k}], first) for k in keys]
        return await store.record_batch(writes, fencing=fencing)

    filled = _run(database_url, fill)
    assert [s.outcome for s in filled] == ["changed"] * 60

    later = first + timedelta(minutes=1)

    async def second(store: Store) -> list[StoredRefresh]:
        # keys 0-39 unchanged, 40-49 changed, 50-54 failed, 55-59 shrunk to nothing (rejected)
        guard = ShrinkGuard(empty_from=0, accept_after=3)
        writes: list[RefreshWrite] = [
            *[await _success(store, k, [{"id": k}], later) for k in keys[:40]],
            *[await _success(store, k, [{"id": k}, {"id": "new"}], later) for k in keys[40:50]],
            *[await _failure(store, k, later) for k in keys[50:55]],
            *[await _success(store, k, [], later, guard) for k in keys[55:]],
        ]
        return await store.record_batch(writes, fencing=fencing)

    stored = _run(database_url, second)
    outcomes = [s.outcome for s in stored]
    assert outcomes == ["unchanged"] * 40 + ["changed"] * 10 + ["failed"] * 5 + ["rejected"] * 5
    for before, after in zip(filled[:40], stored[:40], strict=True):
        assert after.snapshot_id == before.snapshot_id

    versions = dict(db.execute("SELECT key, max(version) FROM snapshots GROUP BY key").fetchall())
    assert versions == {k: (2 if k in keys[40:50] else 1) for k in keys}
    verified = dict(
        db.execute(
            "SELECT s.key, s.verified_at FROM snapshots s"
            " JOIN dataset_keys k ON k.latest_snapshot_id = s.id"
        ).fetchall()
    )
    assert all(verified[k] == later for k in keys[:50])
    assert all(verified[k] == first for k in keys[50:])
    states = dict(db.execute("SELECT key, last_outcome FROM dataset_keys").fetchall())
    assert [states[k] for k in keys] == outcomes
    runs = db.execute(
        "SELECT outcome, instance, count(*) FROM refresh_runs WHERE finished_at = %s"
        " GROUP BY 1, 2 ORDER BY 1",
        (later,),
    ).fetchall()
    assert runs == [
        ("changed", "worker-a", 10),
        ("failed", "worker-a", 5),
        ("rejected", "worker-a", 5),
        ("unchanged", "worker-a", 40),
    ]
    run_ids = db.execute(
        "SELECT id, snapshot_id FROM refresh_runs WHERE outcome = 'unchanged' ORDER BY id"
    ).fetchall()
    assert run_ids == [(s.run_id, s.snapshot_id) for s in stored[:40]]


def test_unchanged_batch_sends_a_change_notification_per_key(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    _prepare(db)
    keys = _keys(5)
    now = utcnow()

    async def fill(store: Store) -> None:
        await store.record_batch([await _success(store, k, [k], now) for k in keys])

    _run(database_url, fill)
    db.execute("LISTEN snapshots_changes")

    async def again(store: Store) -> list[StoredRefresh]:
        later = now + timedelta(seconds=5)
        return await store.record_batch([await _success(store, k, [k], later) for k in keys])

    stored = _run(database_url, again)
    notes = [channels.decode_change(n.payload) for n in db.notifies(timeout=1, stop_after=5)]
    assert [(c.key, c.run_id, c.outcome, c.snapshot_id) for c in notes if c] == [
        (k, s.run_id, "unchanged", s.snapshot_id) for k, s in zip(keys, stored, strict=True)
    ]


def test_a_fenced_batch_stores_nothing(database_url: str, db: psycopg.Connection[Any]) -> None:
    _prepare(db, epoch=5)
    keys = _keys(20)
    now = utcnow()

    async def fill(store: Store) -> None:
        await store.record_batch(
            [await _success(store, k, [k], now) for k in keys], fencing=Fencing(5, "a")
        )

    _run(database_url, fill)
    before = db.execute("SELECT count(*), max(verified_at) FROM snapshots").fetchone()

    async def deposed(store: Store) -> None:
        later = now + timedelta(minutes=1)
        writes: list[RefreshWrite] = [
            *[await _success(store, k, [k], later) for k in keys[:10]],  # unchanged
            *[await _success(store, k, [k, "x"], later) for k in keys[10:15]],  # changed
            *[await _failure(store, k, later) for k in keys[15:]],
        ]
        batcher = WriteBatcher(store)
        results = await asyncio.gather(
            *(batcher.write(w, Fencing(4, "old")) for w in writes), return_exceptions=True
        )
        assert all(isinstance(r, Fenced) for r in results)

    _run(database_url, deposed)
    assert db.execute("SELECT count(*), max(verified_at) FROM snapshots").fetchone() == before
    assert db.execute("SELECT count(*) FROM refresh_runs WHERE instance = 'old'").fetchone() == (0,)
    assert set(db.execute("SELECT last_outcome FROM dataset_keys").fetchall()) == {("changed",)}


def test_the_batcher_writes_concurrent_results_in_few_transactions(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    _prepare(db)
    keys = _keys(100)
    now = utcnow()

    async def body(store: Store) -> tuple[list[StoredRefresh], int]:
        batcher = WriteBatcher(store)
        writes = [await _success(store, k, [k], now) for k in keys]
        first = await asyncio.gather(*(batcher.write(w) for w in writes))
        assert [s.outcome for s in first] == ["changed"] * 100
        later = now + timedelta(seconds=10)
        writes = [await _success(store, k, [k], later) for k in keys]
        with _commits_of(store) as commits:
            again = await asyncio.gather(*(batcher.write(w) for w in writes))
        return again, len(commits)

    stored, commits = _run(database_url, body)
    assert [s.outcome for s in stored] == ["unchanged"] * 100
    assert commits <= 3  # one batch (more if the burst straddles batches), not a hundred
    assert db.execute(
        "SELECT count(*) FROM snapshots WHERE verified_at = %s", (now + timedelta(seconds=10),)
    ).fetchone() == (100,)


@contextlib.contextmanager
def _commits_of(store: Store) -> Iterator[list[object]]:
    """The transactions the store's engine commits inside the block, one item each. Counted on
    the engine itself: the database's own counter (`pg_stat_database`) also took in commits of
    earlier tests' sessions, reported when those ended (158 in one CI run)."""
    commits: list[object] = []

    def committed(connection: object) -> None:
        commits.append(connection)

    event.listen(store.engine.sync_engine, "commit", committed)
    try:
        yield commits
    finally:
        event.remove(store.engine.sync_engine, "commit", committed)


def test_the_same_key_twice_goes_in_two_batches_in_order(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    _prepare(db)
    now = utcnow()

    async def body(store: Store) -> list[StoredRefresh]:
        batcher = WriteBatcher(store)
        one = await _success(store, "PSCH001", ["a"], now)
        two = await _success(store, "PSCH001", ["b"], now + timedelta(seconds=1))
        return list(await asyncio.gather(batcher.write(one), batcher.write(two)))

    stored = _run(database_url, body)
    assert [s.outcome for s in stored] == ["changed", "changed"]
    assert db.execute("SELECT version, payload FROM snapshots ORDER BY version").fetchall() == [
        (1, ["a"]),
        (2, ["b"]),
    ]


def test_a_batch_holding_one_key_twice_is_refused(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    _prepare(db)
    now = utcnow()

    async def body(store: Store) -> None:
        one = await _success(store, "PSCH001", ["a"], now)
        with pytest.raises(ValueError, match="twice"):
            await store.record_batch([one, one])

    _run(database_url, body)
    assert db.execute("SELECT count(*) FROM snapshots").fetchone() == (0,)


def test_coalesced_reads_and_run_ids_answer_each_caller(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    _prepare(db)
    now = utcnow()

    async def body(store: Store) -> None:
        await store.record_batch([await _success(store, k, [k], now) for k in _keys(3)])
        latest = Coalescer(store.latest_many)
        found = await asyncio.gather(*(latest((PD, k)) for k in [*_keys(3), "PSCH404"]))
        assert [f.snapshot.payload if f and f.snapshot else None for f in found] == [
            ["PSCH000"],
            ["PSCH001"],
            ["PSCH002"],
            None,
        ]
        run_ids: Coalescer[None, int] = Coalescer(lambda c: store.allocate_run_ids(len(c)))
        ids = await asyncio.gather(*(run_ids(None) for _ in range(50)))
        assert len(set(ids)) == 50
        assert ids == sorted(ids)
        assert await store.allocate_run_id() > max(ids)

    _run(database_url, body)
