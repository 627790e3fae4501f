"""Failures keep their diagnosis: logged with the (redacted) traceback, and isolated, so one
failing listener or housekeeping job does not take the others (or a stored refresh) with it."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from helpers import Gateway, Simulator, wait_for
from snapshots.config import JobsConfig
from snapshots.handles import RefreshResult

StartGateway = Callable[[JobsConfig], Gateway]
PD = "pagerduty.schedule_users"


@pytest.fixture
def service_log() -> Iterator[Callable[[], str]]:
    """What the service logs during the test, rendered by its own configured formatter."""
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    yield buffer.getvalue
    root.removeHandler(handler)


def _refresher(gateway: Gateway) -> Any:
    """The refresher of an in-process gateway (to plug a listener in, as a plugin would)."""
    app: Any = gateway.server.server.config.app
    return app.dependencies["composition"].dependency().read.refresher


def test_a_raising_refresh_listener_is_logged_and_fails_neither_the_refresh_nor_the_others(
    start_gateway: StartGateway,
    every_dataset_config: Callable[..., JobsConfig],
    simulator: Simulator,
    service_log: Callable[[], str],
) -> None:
    gateway = start_gateway(every_dataset_config())
    wait_for(lambda: gateway.snapshot(PD, "PSCH001").status_code == 200)
    assert gateway.snapshot(PD, "PSCH001").json()["version"] == 1  # cached now
    heard: list[tuple[str, str, str]] = []

    def broken(dataset: str, key: str, result: RefreshResult) -> None:
        raise RuntimeError("listener bug 4711")

    _refresher(gateway).add_listener(broken)
    _refresher(gateway).add_listener(lambda d, k, r: heard.append((d, k, r.outcome)))
    simulator.rotate_schedule("PSCH001")

    response = gateway.http.post(f"/api/v1/snapshots/{PD}/PSCH001/refresh", params={"wait": 10})

    assert response.status_code == 200, response.text
    assert response.headers["X-Refresh-Outcome"] == "changed"
    assert gateway.snapshot(PD, "PSCH001").json()["version"] == 2  # the cache was invalidated
    assert heard == [(PD, "PSCH001", "changed")]
    text = service_log()
    assert "refresh.listener_failed" in text
    assert "listener bug 4711" in text
    assert "Traceback (most recent call last)" in text


def test_a_failing_prune_is_logged_and_does_not_stop_the_budget_plan(
    start_gateway: StartGateway,
    every_dataset_config: Callable[..., JobsConfig],
    db: psycopg.Connection[Any],
    service_log: Callable[[], str],
) -> None:
    db.execute(
        "CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN RAISE EXCEPTION 'deletes of refresh_runs refused (test 4712)'; END$$"
    )
    db.execute(
        "CREATE TRIGGER refuse_delete BEFORE DELETE ON refresh_runs"
        " FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete()"
    )
    try:
        gateway = start_gateway(every_dataset_config(service='maintenance_interval = "1s"'))
        providers = {p["provider"]: p for p in gateway.http.get("/api/v1/providers").json()}
        wait_for(lambda: "test 4712" in service_log())
    finally:
        db.execute("DROP TRIGGER refuse_delete ON refresh_runs")
        db.execute("DROP FUNCTION refuse_delete()")

    assert providers["pagerduty"]["plan"] is not None  # re-planned despite the failed prune
    text = service_log()
    assert "scheduler.maintenance_failed" in text
    assert "job=prune" in text
    assert "Traceback (most recent call last)" in text


def test_a_leader_election_that_cannot_work_says_why(
    start_gateway: StartGateway,
    every_dataset_config: Callable[..., JobsConfig],
    db: psycopg.Connection[Any],
    service_log: Callable[[], str],
) -> None:
    db.execute("ALTER TABLE worker_leader RENAME TO worker_leader_hidden")
    try:
        gateway = start_gateway(every_dataset_config())
        worker = gateway.http.get("/api/v1/worker").json()
        wait_for(lambda: "leader.acquire_failed" in service_log())
    finally:
        db.execute("ALTER TABLE worker_leader_hidden RENAME TO worker_leader")

    assert worker["active"] is False
    text = service_log()
    assert 'relation "worker_leader" does not exist' in text
    assert "Traceback (most recent call last)" in text
