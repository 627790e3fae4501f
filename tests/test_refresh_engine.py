"""The refresh engine against the simulator and Postgres: cadence, single flight, cold miss,
forced refresh, max_age, stale-if-error, the shrink guard, planning, retirement, 304s."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from helpers import Gateway, Simulator, runs_with_outcome, wait_for
from snapshots.config import JobsConfig, load_jobs

StartGateway = Callable[[JobsConfig], Gateway]
PD = "pagerduty.schedule_users"
COLLABORATORS = "github.repo_collaborators"


@pytest.fixture
def config(tmp_path: Path, simulator: Simulator) -> Callable[..., JobsConfig]:
    """jobs.toml on the simulator with the given service settings and datasets."""

    def make(
        datasets: str, service: str = "", pd_budget: str = "100/1s", read_wait: str = "5s"
    ) -> JobsConfig:
        path = tmp_path / "jobs.toml"
        path.write_text(
            f"""
[service]
read_wait = "{read_wait}"
{service}

[providers.pagerduty]
base_url = "{simulator.url}/pagerduty"
token = "sim-pagerduty-token"
budget = "{pd_budget}"

[providers.github]
base_url = "{simulator.url}/github"
token = "sim-github-token"
budget = "100/1s"
page_size = 30
{datasets}
"""
        )
        return load_jobs(path, env={})

    return make


def _runs(db: psycopg.Connection[Any], key: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, trigger, outcome, started_at, error FROM refresh_runs WHERE key = %s ORDER BY id",
        (key,),
    ).fetchall()


def _versions(db: psycopg.Connection[Any], key: str) -> list[tuple[int, int]]:
    rows = db.execute(
        "SELECT version, item_count FROM snapshots WHERE key = %s ORDER BY version", (key,)
    )
    return [(int(v), int(n)) for v, n in rows.fetchall()]


def test_keys_are_refreshed_before_their_ttl_with_jitter(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], db: psycopg.Connection[Any]
) -> None:
    keys = [f"PSCH{n:03d}" for n in range(1, 9)]
    key_list = ", ".join(f'"{k}"' for k in keys)
    start_gateway(config(f'[datasets."{PD}"]\nttl = "2s"\nkeys = [{key_list}]\n'))

    wait_for(lambda: all(len(_runs(db, k)) >= 3 for k in keys), timeout=30)

    second_round = []
    for key in keys:
        starts = [run[3] for run in _runs(db, key)]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
        assert all(gap < 2.0 for gap in gaps), gaps  # refresh-ahead: never as late as the TTL
        second_round.append(starts[1])
    # keys registered together spread out instead of refreshing in lockstep
    assert (max(second_round) - min(second_round)).total_seconds() > 0.02


def test_restart_refreshes_overdue_keys_and_leaves_fresh_ones(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    cfg = config(f'[datasets."{PD}"]\nkeys = ["PSCH001", "PSCH002", "PSCH003", "PSCH004"]\n')
    first = start_gateway(cfg)
    wait_for(lambda: runs_with_outcome(db, "changed") == 4)
    first.stop()
    past = datetime.now(UTC) - timedelta(minutes=5)
    db.execute(
        "UPDATE dataset_keys SET next_refresh_at = %s WHERE key IN ('PSCH001', 'PSCH003')", (past,)
    )
    before = simulator.requests()

    start_gateway(cfg)
    wait_for(lambda: runs_with_outcome(db, "unchanged") == 2)

    refreshed = db.execute(
        "SELECT key FROM refresh_runs WHERE outcome = 'unchanged' ORDER BY key"
    ).fetchall()
    assert refreshed == [("PSCH001",), ("PSCH003",)]
    assert simulator.requests() - before == 2


def test_two_hundred_simultaneous_cold_reads_cost_one_upstream_fetch(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], simulator: Simulator
) -> None:
    gateway = start_gateway(config(f'[datasets."{PD}"]\n'))
    simulator.set_latency(0.5)  # the first fetch is still in flight when the others arrive

    async def read_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(
            base_url=gateway.server.url, timeout=30, limits=limits
        ) as http:
            url = f"/api/v1/snapshots/{PD}/PSCH011"
            return await asyncio.gather(*(http.get(url) for _ in range(200)))

    responses = asyncio.run(read_all())

    assert [r.status_code for r in responses] == [200] * 200
    assert {r.json()["version"] for r in responses} == {1}
    assert simulator.requests() == 1


def test_cold_miss_past_the_read_wait_is_503_and_the_fetch_goes_on(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], simulator: Simulator
) -> None:
    gateway = start_gateway(config(f'[datasets."{PD}"]\n', read_wait="500ms"))
    simulator.set_latency(2.0)

    response = gateway.snapshot(PD, "PSCH012")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    served = wait_for(
        lambda: (r := gateway.snapshot(PD, "PSCH012")).status_code == 200 and r, timeout=15
    )
    assert served.json()["version"] == 1
    assert simulator.requests() == 1


def test_reads_register_at_most_max_keys(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], simulator: Simulator
) -> None:
    gateway = start_gateway(config(f'[datasets."{PD}"]\nmax_keys = 2\nkeys = ["PSCH001"]\n'))

    statuses = [gateway.snapshot(PD, k).status_code for k in ("PSCH002", "PSCH003", "PSCH004")]

    assert statuses == [200, 200, 409]
    error = gateway.snapshot(PD, "PSCH004").json()["error"]
    assert error["code"] == "max_keys_reached"
    assert "max_keys" in error["message"]
    assert gateway.snapshot(PD, "PSCH001").status_code == 200  # configured keys do not count
    assert simulator.requests() == 3


def test_idle_on_demand_keys_are_retired_and_keep_their_history(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], db: psycopg.Connection[Any]
) -> None:
    gateway = start_gateway(
        config(
            f'[datasets."{PD}"]\nidle_retire = "1s"\nkeys = ["PSCH001"]\n',
            service='maintenance_interval = "500ms"',
        )
    )
    assert gateway.snapshot(PD, "PSCH005").status_code == 200

    wait_for(
        lambda: (
            db.execute("SELECT count(*) FROM dataset_keys WHERE key = 'PSCH005'").fetchone() == (0,)
        )
    )

    assert db.execute("SELECT count(*) FROM dataset_keys WHERE key = 'PSCH001'").fetchone() == (1,)
    assert _versions(db, "PSCH005") == [(1, len(gateway.snapshot(PD, "PSCH005").json()["data"]))]


def test_forced_refresh_returns_the_run_and_coalesces_and_respects_the_minimum_interval(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(
        config(f'[datasets."{PD}"]\nmin_refresh_interval = "1h"\nkeys = ["PSCH001"]\n')
    )
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    db.execute("UPDATE dataset_keys SET last_refresh_at = now() - interval '2 hours'")
    simulator.set_latency(0.5)
    url = f"/api/v1/snapshots/{PD}/PSCH001/refresh"

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda _: gateway.http.post(url), range(2))
    run = wait_for(
        lambda: (
            (r := gateway.http.get(f"/api/v1/runs/{first.json()['run_id']}").json())["status"]
            != "running"
            and r
        )
    )
    too_soon = gateway.http.post(url)

    assert first.status_code == second.status_code == 202
    assert {first.json()["status"], second.json()["status"]} == {"started", "joined"}
    assert first.json()["run_id"] == second.json()["run_id"]
    assert first.headers["Location"] == f"/api/v1/runs/{first.json()['run_id']}"
    assert run["status"] == "unchanged"
    assert run["trigger"] == "demand"
    assert too_soon.status_code == 429
    assert too_soon.json()["error"]["code"] == "refresh_too_soon"
    assert "minimum interval" in too_soon.json()["error"]["message"]
    assert 3000 < int(too_soon.headers["Retry-After"]) <= 3600
    assert simulator.requests() == 2  # warm-up + one shared forced refresh


def test_forced_refresh_with_wait_returns_the_new_snapshot(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(
        config(f'[datasets."{PD}"]\nmin_refresh_interval = "1ms"\nkeys = ["PSCH002"]\n')
    )
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    simulator.rotate_schedule("PSCH002")

    response = gateway.http.post(f"/api/v1/snapshots/{PD}/PSCH002/refresh", params={"wait": 5})

    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert response.headers["X-Refresh-Outcome"] == "changed"


def test_dataset_refresh_starts_every_key_at_interactive_priority(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], db: psycopg.Connection[Any]
) -> None:
    gateway = start_gateway(
        config(
            f'[datasets."{PD}"]\nmin_refresh_interval = "1ms"\nkeys = ["PSCH001", "PSCH002", "PSCH003"]\n'
        )
    )
    wait_for(lambda: runs_with_outcome(db, "changed") == 3)

    response = gateway.http.post(f"/api/v1/datasets/{PD}/refresh")

    assert response.status_code == 202
    assert sorted(k["key"] for k in response.json()["keys"]) == ["PSCH001", "PSCH002", "PSCH003"]
    assert {k["status"] for k in response.json()["keys"]} == {"started"}
    wait_for(
        lambda: (
            db.execute("SELECT count(*) FROM refresh_runs WHERE trigger = 'demand'").fetchone()
            == (3,)
        )
    )


def test_max_age_refreshes_an_older_snapshot_and_serves_a_younger_one(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(
        config(f'[datasets."{PD}"]\nmin_refresh_interval = "1ms"\nkeys = ["PSCH003"]\n')
    )
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    threading.Event().wait(0.3)

    young_enough = gateway.http.get(f"/api/v1/snapshots/{PD}/PSCH003", params={"max_age": 3600})
    requests_before = simulator.requests()
    refreshed = gateway.http.get(f"/api/v1/snapshots/{PD}/PSCH003", params={"max_age": 0.1})

    assert young_enough.status_code == refreshed.status_code == 200
    assert requests_before == 1
    assert simulator.requests() == 2
    assert refreshed.json()["freshness"]["age_seconds"] < 0.3
    assert (
        refreshed.json()["freshness"]["verified_at"]
        > young_enough.json()["freshness"]["verified_at"]
    )


@pytest.mark.parametrize("fault", ["error", "malformed", "empty-object"])
def test_failed_or_invalid_refresh_keeps_the_last_good_snapshot(
    fault: str,
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    dataset = "pagerduty.escalation_policy"
    gateway = start_gateway(
        config(f'[datasets."{dataset}"]\nmin_refresh_interval = "1ms"\nkeys = ["PPOL001"]\n')
    )
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    good = gateway.snapshot(dataset, "PPOL001").json()
    kind = "empty" if fault == "empty-object" else fault
    simulator.add_fault("pagerduty", kind, status=500, count=10)

    response = gateway.http.post(
        f"/api/v1/snapshots/{dataset}/PPOL001/refresh", params={"wait": 10}
    )
    after = gateway.snapshot(dataset, "PPOL001").json()

    assert response.status_code == 502
    assert after["data"] == good["data"]
    assert after["version"] == 1
    assert after["freshness"]["last_error"]
    assert db.execute("SELECT count(*) FROM snapshots").fetchone() == (1,)
    assert runs_with_outcome(db, "failed") == 1


def test_shrink_guard_rejects_an_empty_list_until_it_repeats(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    datasets = (
        f'[datasets."{COLLABORATORS}"]\nmin_refresh_interval = "1ms"\nkeys = ["acme/repo-03"]\n'
    )
    datasets += '[datasets."github.repo_collaborators".shrink_guard]\naccept_after = 2\n'
    gateway = start_gateway(config(datasets))
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    url = f"/api/v1/snapshots/{COLLABORATORS}/acme/repo-03/refresh"
    simulator.add_fault("github", "empty", count=10)

    first = gateway.http.post(url, params={"wait": 10})
    served = gateway.snapshot(COLLABORATORS, "acme/repo-03").json()
    second = gateway.http.post(url, params={"wait": 10})

    assert first.status_code == 200
    assert first.headers["X-Refresh-Outcome"] == "rejected"
    assert len(served["data"]) == 75  # the empty list is not served
    assert "dropped from 75 to 0" in served["freshness"]["last_error"]
    assert second.headers["X-Refresh-Outcome"] == "changed"  # the same shrink, seen twice in a row
    assert len(second.json()["data"]) == 0
    assert _versions(db, "acme/repo-03") == [(1, 75), (2, 0)]
    outcomes = [run[2] for run in _runs(db, "acme/repo-03")]
    assert outcomes == ["changed", "rejected", "changed"]


def test_operator_can_accept_a_shrink_at_once(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(
        config(
            f'[datasets."{COLLABORATORS}"]\nmin_refresh_interval = "1ms"\nkeys = ["acme/repo-21"]\n'
        )
    )
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    simulator.add_fault("github", "empty", count=10)
    url = f"/api/v1/snapshots/{COLLABORATORS}/acme/repo-21/refresh"

    response = gateway.http.post(url, params={"wait": 10, "accept_shrink": "true"})

    assert response.headers["X-Refresh-Outcome"] == "changed"
    assert response.json()["data"] == []
    note = db.execute("SELECT error FROM refresh_runs ORDER BY id DESC LIMIT 1").fetchone()
    assert note is not None
    assert "accepted by an operator" in note[0]


def test_github_304_adds_no_version_and_spends_no_budget(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = start_gateway(
        config(
            f'[datasets."{COLLABORATORS}"]\nmin_refresh_interval = "1ms"\nkeys = ["acme/repo-03"]\n'
        )
    )
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)  # 3 pages of 30

    response = gateway.http.post(
        f"/api/v1/snapshots/{COLLABORATORS}/acme/repo-03/refresh", params={"wait": 10}
    )

    assert response.headers["X-Refresh-Outcome"] == "unchanged"
    assert len(response.json()["data"]) == 75
    assert simulator.counters()["github"]["by_status"] == {"200": 3, "304": 3}
    github = next(
        p for p in gateway.http.get("/api/v1/providers").json() if p["provider"] == "github"
    )
    assert github["budget"]["used_in_period"] == 3  # the three 304s gave their tokens back
    assert _versions(db, "acme/repo-03") == [(1, 75)]


def test_short_budget_stretches_intervals_and_reports_the_shortfall(
    start_gateway: StartGateway, config: Callable[..., JobsConfig], db: psycopg.Connection[Any]
) -> None:
    keys = ", ".join(f'"PSCH{n:03d}"' for n in range(1, 11))
    gateway = start_gateway(
        config(f'[datasets."{PD}"]\nttl = "1m"\nkeys = [{keys}]\n', pd_budget="60/1h")
    )
    wait_for(lambda: runs_with_outcome(db, "changed") == 10)

    plan = next(
        p for p in gateway.http.get("/api/v1/providers").json() if p["provider"] == "pagerduty"
    )["plan"]
    gaps = db.execute("SELECT min(next_refresh_at - last_refresh_at) FROM dataset_keys").fetchone()

    assert plan["stretch"] > 10  # 750 requests/h wanted, 54/h planned
    assert plan["shortfall_per_hour"] > 600
    assert plan["datasets"][0] == {
        "dataset": PD,
        "keys": 10,
        "requests_per_refresh": 1.0,
        "requests_per_hour": 750.0,
    }
    assert gaps is not None
    assert gaps[0].total_seconds() > 60 * 0.8 * 0.9 * 10  # ten times the unstretched interval
