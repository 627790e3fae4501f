"""Fencing of a deposed leader, piece by piece: its store writes carry its epoch and are
refused once a newer leader took over, and its upstream gate refuses calls once its lease ran
out. (tests/test_topology.py shows the whole: a SIGSTOPped leader resumed stores nothing.)"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest

from helpers import Simulator
from snapshots.budget import Budget
from snapshots.clock import utcnow
from snapshots.config import BudgetLimit
from snapshots.coordination.fence import Fence, Fenced
from snapshots.providers.transport import UpstreamGate
from snapshots.store import Fencing, FetchedPayload, RunTiming, Store, create_engine

PD = "pagerduty.schedule_users"


def _set_epoch(db: psycopg.Connection[Any], epoch: int) -> None:
    db.execute(
        "INSERT INTO worker_leader (id, instance, heartbeat_at, epoch) VALUES (1, 'w', now(), %s)"
        " ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch",
        (epoch,),
    )
    db.execute(
        "INSERT INTO datasets (name, provider, ttl_seconds, enabled, updated_at)"
        " VALUES (%s, 'pagerduty', 300, true, now()) ON CONFLICT DO NOTHING",
        (PD,),
    )


async def _store(database_url: str, fencing: Fencing, payload: Any) -> None:
    store = Store(create_engine(database_url))
    try:
        now = utcnow()
        run_id = await store.allocate_run_id()
        timing = RunTiming("schedule", now, now, 1, run_id)
        await store.record_success(
            PD,
            "PSCH001",
            FetchedPayload.of(payload),
            timing,
            now + timedelta(minutes=5),
            "config",
            fencing=fencing,
        )
    finally:
        await store.engine.dispose()


def test_a_write_with_an_old_epoch_is_refused_and_stores_nothing(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    _set_epoch(db, 7)

    asyncio.run(_store(database_url, Fencing(7, "worker-a"), [{"id": "PU1"}]))
    with pytest.raises(Fenced, match="epoch 6"):
        asyncio.run(_store(database_url, Fencing(6, "worker-old"), [{"id": "PU2"}]))

    versions = db.execute("SELECT version, payload FROM snapshots").fetchall()
    assert versions == [(1, [{"id": "PU1"}])]
    runs = db.execute("SELECT instance, outcome FROM refresh_runs").fetchall()
    assert runs == [("worker-a", "changed")]


class SteppingClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_expired_lease_refuses_upstream_calls_before_they_are_made(
    simulator: Simulator,
) -> None:
    clock = SteppingClock()
    fence = Fence(lease_seconds=5.0, clock=clock)
    fence.grant(3)
    gate = UpstreamGate("pagerduty", Budget("pagerduty", BudgetLimit(100, 60.0)), fence=fence)
    headers = {"Authorization": "Token token=sim-pagerduty-token"}
    with httpx.Client(base_url=f"{simulator.url}/pagerduty", headers=headers) as http:

        def call() -> httpx.Response:
            return http.get("/schedules/PSCH001/users")

        assert gate.send(call, (httpx.TransportError,)).status_code == 200
        fence.renew(checked_at=clock.now)
        clock.now += 4.0
        assert gate.send(call, (httpx.TransportError,)).status_code == 200  # still leased
        clock.now += 2.0  # paused past the lease, no check since
        with pytest.raises(Fenced):
            gate.send(call, (httpx.TransportError,))
        fence.grant(4)  # leadership won again: calls go through
        assert gate.send(call, (httpx.TransportError,)).status_code == 200

    assert simulator.requests("pagerduty") == 3
