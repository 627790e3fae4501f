"""The shipped topology (issue 14): three `snapshots api` replicas and two `snapshots worker`
processes on one PostgreSQL and the simulator. Reads through any replica keep an on-demand key
registered; every replica shows the budget the active worker published; a reader waiting on a
forced refresh gets a prompt 503 when its worker loses the lock, and an HTTP answer when the
worker is killed, after which the standby carries on; a leader paused past its takeover (a paged
fetch between pages) and then resumed stores nothing and calls no upstream.

tests/test_scale_out.py already covers election, takeover timing after a kill or a lost lock
connection, routing from one API replica, and cache invalidation across processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from helpers import Simulator
from snapshots.coordination.leader import LOCK_KEY
from snapshots.database import libpq_url
from snapshots.uvicorn_runner import BackgroundServer
from topology import (
    IDLE_RETIRE,
    LEADER_CHECK,
    MAINTENANCE,
    PD,
    WARM_KEYS,
    Node,
    Topology,
    by_instance,
    eventually,
    in_flight,
    miss_runs,
    runs_stored_by,
    topology_toml,
    upstream_calls,
)

LOCK_HOLDER = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND classid = %s::oid AND objid = %s::oid AND objsubid = 1"
)
TABLES = "refresh_runs, dataset_keys, snapshots, datasets, refresh_requests, worker_leader"
READ_EVERY = 0.75  # seconds between reads of the on-demand key, across the replicas
BUDGET_TOLERANCE = 10  # upstream requests the worker may make between two budget readings
REFRESH_WAIT = 20  # seconds a reader waits on a forced refresh
SLOW_UPSTREAM = 5.0  # seconds, so a forced refresh is still in flight when its worker dies
STUCK_UPSTREAM = 12.0  # seconds: longer than a step-down takes to answer the reader
STEP_DOWN_ANSWER = 6.0  # seconds from losing the lock to the reader's answer (lock check 1 s)
FENCING_LATENCY = 1.0  # seconds, so a paused leader has fetches in flight
RESUMED_WINDOW = 4.0  # seconds a resumed old leader is watched
FIRST_PAGE = ("/jira/rest/api/2/search", "PRJ3", "startAt=0")  # of the paged dataset


def _empty(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute("SELECT to_regclass('provider_states') IS NOT NULL").fetchone()
    published = ", provider_states" if row and row[0] else ""
    conn.execute(f"TRUNCATE {TABLES}{published} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="module")
def sim(simulator_server: BackgroundServer) -> Iterator[Simulator]:
    """The simulator, reset once: a reset mid-module would stop counting requests in flight."""
    handle = Simulator(simulator_server.url)
    handle.http.post("/_sim/reset").raise_for_status()
    yield handle
    handle.http.post("/_sim/reset").raise_for_status()
    handle.http.close()


@pytest.fixture(scope="module")
def rows(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """The database emptied once for the module (the `db` fixture would truncate the leader
    table under running workers), and a connection for asserting on rows."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        _empty(conn)
        yield conn
        _empty(conn)  # no published budget or leader row is left for other tests


@pytest.fixture(scope="module")
def topology(
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    sim: Simulator,
    rows: psycopg.Connection[Any],
) -> Iterator[Topology]:
    """api-1..3 and worker-a/b, started together; every process killed at the end (a paused
    one is resumed first)."""
    logs: Path = tmp_path_factory.mktemp("topology")
    config = logs / "jobs.toml"
    config.write_text(topology_toml(sim.url))
    topology = Topology(config, database_url, logs)
    try:
        topology.start(
            ("worker", "worker-a"),
            ("worker", "worker-b"),
            ("api", "api-1"),
            ("api", "api-2"),
            ("api", "api-3"),
        )
        yield topology
    finally:
        topology.close()


def _pagerduty(node: Node) -> dict[str, Any]:
    """The pagerduty item of a process's `GET /api/v1/providers`."""
    answer = node.get("/api/v1/providers")
    assert answer.status_code == 200, f"{node.name}: {answer.status_code} {answer.text}"
    [item] = [p for p in answer.json() if p["provider"] == "pagerduty"]
    return dict(item)


def _used(item: dict[str, Any]) -> int | None:
    budget = item.get("budget")
    return int(budget["used_in_period"]) if budget else None


def _refresh(api: Node, key: str, wait: float) -> httpx.Response:
    return httpx.post(
        f"{api.url}/api/v1/refresh/{PD}/{key}", params={"wait": wait}, timeout=wait + 10
    )


def _registered_at(rows: psycopg.Connection[Any], key: str) -> datetime | None:
    row = rows.execute(
        "SELECT registered_at FROM dataset_keys WHERE dataset = %s AND key = %s", (PD, key)
    ).fetchone()
    return None if row is None else row[0]


def _fetching(sim: Simulator, instance: str, *parts: str) -> None:
    """Assert the simulator holds an upstream request from `instance` unanswered (one whose
    path and query contain every one of `parts`)."""
    pending = in_flight(sim)
    mine = [r for r in pending if r["instance"] == instance and all(p in r["path"] for p in parts)]
    assert mine, f"nothing in flight from {instance} with {parts}: {pending}"


def test_reads_through_api_replicas_keep_an_on_demand_key_registered(
    topology: Topology, rows: psycopg.Connection[Any]
) -> None:
    topology.settle()
    key = "PSCH002"
    assert key not in WARM_KEYS
    missing: list[float] = []  # seconds into the reads when the key was not registered
    registrations: set[datetime] = set()
    reads = 0
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < 4 * IDLE_RETIRE + 2 * MAINTENANCE:
        if reads:  # before each read: a retired key would be re-registered by the read
            registered = _registered_at(rows, key)
            if registered is None:
                missing.append(round(elapsed, 1))
        api = topology.apis[reads % len(topology.apis)]
        answer = api.get(f"/api/v1/snapshots/{PD}/{key}", timeout=15)
        assert answer.status_code == 200, (
            f"read {reads} on {api.name} at {elapsed:.1f}s: {answer.status_code} {answer.text}"
        )
        reads += 1
        registered = _registered_at(rows, key)
        if registered is not None:
            registrations.add(registered)
        time.sleep(READ_EVERY)

    misses = miss_runs(rows, key)
    assert (missing, len(registrations), misses) == ([], 1, 1), (
        f"{reads} reads round-robin over {len(topology.apis)} api replicas in {elapsed:.0f}s"
        f" (idle_retire {IDLE_RETIRE:g}s): unregistered at {missing}s,"
        f" registered {len(registrations)} times, fetched by {misses} cold misses"
    )


def test_every_replica_shows_the_budget_the_active_worker_published(
    topology: Topology, sim: Simulator
) -> None:
    active, standby = topology.settle()

    def spent() -> None:
        assert by_instance(sim).get(active.name, 0) > 0, f"{active.name} made no request"

    eventually(spent)

    def agree() -> None:
        own = _used(_pagerduty(active))
        problems = [] if own and own > 0 else [f"{active.name} (active): used_in_period {own}"]
        for node in [*topology.apis, standby]:
            item = _pagerduty(node)
            used, published = _used(item), item.get("published")
            if not isinstance(published, dict):
                problems.append(f"{node.name}: published {published!r}, used_in_period {used}")
                continue
            age = published.get("age_seconds")
            if published.get("instance") != active.name:
                problems.append(f"{node.name}: published by {published.get('instance')!r}")
            if not isinstance(age, int | float) or not 0 <= age < 5:
                problems.append(f"{node.name}: published age_seconds {age!r}")
            if not isinstance(published.get("at"), str):
                problems.append(f"{node.name}: published at {published.get('at')!r}")
            else:
                datetime.fromisoformat(published["at"])
            if used is None or own is None or used <= 0 or abs(used - own) > BUDGET_TOLERANCE:
                problems.append(f"{node.name}: used_in_period {used}, {active.name}'s {own}")
        assert not problems, "; ".join(problems)

    eventually(agree, timeout=15, interval=0.5)


def test_api_replica_metrics_show_the_published_budget(topology: Topology, sim: Simulator) -> None:
    active, _standby = topology.settle()
    gauge = 'snapshots_budget_used_in_period{provider="pagerduty"}'

    def spent_everywhere() -> None:
        assert by_instance(sim).get(active.name, 0) > 0, f"{active.name} made no request"
        for api in topology.apis:
            lines = [ln for ln in api.get("/metrics").text.splitlines() if ln.startswith(gauge)]
            assert lines, f"{api.name}: no {gauge}"
            assert float(lines[0].split()[-1]) > 0, f"{api.name}: {lines[0]}"

    eventually(spent_everywhere, timeout=15, interval=0.5)


def test_a_worker_that_loses_its_lock_answers_a_waiting_reader_at_once(
    topology: Topology, sim: Simulator, rows: psycopg.Connection[Any]
) -> None:
    active, _standby = topology.settle()
    key, api = "PSCH003", topology.apis[0]
    sim.set_latency(STUCK_UPSTREAM)
    try:
        with ThreadPoolExecutor(1) as pool:
            reader = pool.submit(_refresh, api, key, REFRESH_WAIT)
            eventually(lambda: _fetching(sim, active.name, key), timeout=10, interval=0.05)
            [(holder,)] = rows.execute(LOCK_HOLDER, (LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF))
            rows.execute("SELECT pg_terminate_backend(%s)", (holder,))  # the lock goes
            cut = time.monotonic()
            try:
                answer = reader.result()
            except httpx.TransportError as exc:
                waited = time.monotonic() - cut
                pytest.fail(f"the reader got no HTTP answer {waited:.1f}s after: {exc!r}")
            answered = time.monotonic() - cut
    finally:
        sim.set_latency(0)

    # The fetch is still waiting on the upstream: only the step-down can have answered.
    assert (answer.status_code, answered < STEP_DOWN_ANSWER) == (503, True), (
        f"{answer.status_code} {answer.text} {answered:.1f}s after {active.name} lost its lock"
        f" (the reader's wait was {REFRESH_WAIT}s)"
    )
    assert answer.json()["error"]["code"] == "unavailable", answer.text
    assert "Retry-After" in answer.headers
    open_rows = rows.execute(
        "SELECT id, status FROM refresh_requests WHERE dataset = %s AND key = %s"
        " AND status IN ('pending', 'claimed', 'started')",
        (PD, key),
    ).fetchall()
    assert open_rows == [], f"request rows left open: {open_rows}"


def test_killing_the_active_worker_answers_a_waiting_reader_and_the_standby_carries_on(
    topology: Topology, sim: Simulator
) -> None:
    active, standby = topology.settle()
    key, api = "PSCH004", topology.apis[1]
    before = api.get(f"/api/v1/snapshots/{PD}/{key}").json()["version"]
    sim.set_latency(SLOW_UPSTREAM)
    try:
        with ThreadPoolExecutor(1) as pool:
            asked = time.monotonic()
            reader = pool.submit(_refresh, api, key, REFRESH_WAIT)
            eventually(lambda: _fetching(sim, active.name, key), timeout=10, interval=0.05)
            active.kill()
            try:
                answer = reader.result()
            except httpx.TransportError as exc:
                waited = time.monotonic() - asked
                pytest.fail(f"the reader got no HTTP answer after {waited:.1f}s: {exc!r}")
            answered = time.monotonic() - asked
    finally:
        sim.set_latency(0)

    assert answered <= REFRESH_WAIT + 3, f"answered after {answered:.1f}s"
    assert answer.status_code in (200, 503), f"{answer.status_code} {answer.text}"
    if answer.status_code == 503:
        assert answer.json()["error"]["code"] == "unavailable", answer.text
        assert "Retry-After" in answer.headers
    else:  # the refresh completed after all (joined, or run again by the new leader)
        assert answer.headers["X-Refresh-Outcome"] in ("changed", "unchanged"), answer.headers
        assert answer.json()["version"] >= before

    def standby_active() -> None:
        assert standby.worker_status()["active"], f"{standby.name} is not active"

    eventually(standby_active, timeout=15, interval=0.2)

    sim.rotate_schedule(key)
    dead_calls = upstream_calls(sim, active.name)

    def refreshed() -> int:
        again = _refresh(topology.apis[2], key, 10)
        assert again.status_code == 200, f"{again.status_code} {again.text}"
        version = int(again.json()["version"])
        assert version > before, f"version {version}, was {before}"
        return version

    eventually(refreshed, timeout=15, interval=0.5)
    assert by_instance(sim).get(standby.name, 0) > 0
    assert upstream_calls(sim, active.name) == dead_calls


def test_a_paused_leader_resumed_after_takeover_stores_nothing_and_calls_no_upstream(
    topology: Topology, sim: Simulator, rows: psycopg.Connection[Any]
) -> None:
    old, new = topology.settle()
    sim.set_latency(FENCING_LATENCY)
    try:
        # Paused with the first page of a paged fetch in flight: the answer waits in its
        # socket, and the thread that reads it would ask for the next page at once.
        eventually(lambda: _fetching(sim, old.name, *FIRST_PAGE), timeout=15, interval=0.02)
        old.pause()
        paused = time.monotonic()

        def new_active() -> None:
            assert new.worker_status()["active"], f"{new.name} is not active"

        eventually(new_active, timeout=15, interval=0.1)
        takeover = time.monotonic() - paused
        assert takeover <= 5 * LEADER_CHECK + 2, f"takeover took {takeover:.1f}s"

        def old_answered() -> None:
            mine = [r for r in in_flight(sim) if r["instance"] == old.name]
            assert not mine, f"still in flight from {old.name}: {mine}"

        eventually(old_answered, timeout=10)
        calls = upstream_calls(sim, old.name)
        stored = runs_stored_by(rows, old.name)
        stored_by_new = runs_stored_by(rows, new.name)

        old.resume()
        resumed = time.monotonic()

        def old_inactive() -> None:
            assert old.worker_status()["active"] is False, f"{old.name} still reports active"

        eventually(old_inactive, timeout=10, interval=0.1)
        time.sleep(max(0.0, RESUMED_WINDOW - (time.monotonic() - resumed)))

        still_pending = [r["path"] for r in in_flight(sim) if r["instance"] == old.name]
        calls_after = upstream_calls(sim, old.name) - calls
        assert (calls_after, still_pending) == (0, []), (
            f"{old.name} called upstream after it was resumed: {calls_after} answered,"
            f" in flight {still_pending}"
        )
        assert runs_stored_by(rows, old.name) == stored, f"{old.name} stored runs after resuming"
        assert old.worker_status()["active"] is False

        def new_keeps_storing() -> None:
            assert new.worker_status()["active"], f"{new.name} is no longer active"
            assert runs_stored_by(rows, new.name) > stored_by_new, f"{new.name} stored nothing"

        eventually(new_keeps_storing, timeout=10)
    finally:
        sim.set_latency(0)
