"""The shipped topology on one PostgreSQL and the simulator: `snapshots api` replicas and
`snapshots worker` processes, each named by SNAPSHOTS_INSTANCE; and what a test observes of it
(who is active, upstream requests by instance, requests in flight, runs stored by instance)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from helpers import SIM_TOKEN, SNAPSHOTS, Simulator, child_env, free_port

T = TypeVar("T")

PD = "pagerduty.schedule_users"
LEADER_CHECK = 1.0  # seconds: [service] leader_check
MAINTENANCE = 1.0  # seconds: [service] maintenance_interval (read flushes, idle retirement)
IDLE_RETIRE = 3.0  # seconds: the dataset's idle_retire
TTL = 2.0  # seconds: short, so the active worker keeps refreshing
WARM_KEYS = ("PSCH001", "PSCH003", "PSCH004")  # registered from config; never retired
PAGED = ("jira.project_issues", "PRJ3")  # 130 issues: two search pages, fetched by one thread


def topology_toml(simulator_url: str) -> str:
    """Short timings: lock checks, read flushes and retirement every second, keys retired
    after 3 s unread, forced refreshes allowed every 1 ms; the upstream timeout is above
    any latency the tests set. A paged Jira dataset keeps a fetch thread between pages."""
    keys = ", ".join(f'"{k}"' for k in WARM_KEYS)
    paged, paged_key = PAGED
    return f"""
[service]
read_wait = "10s"
leader_check = "{LEADER_CHECK:g}s"
maintenance_interval = "{MAINTENANCE:g}s"

[providers.pagerduty]
base_url = "{simulator_url}/pagerduty"
token = "{SIM_TOKEN}"
budget = "900/60s"
timeout = "20s"

[providers.jira]
base_url = "{simulator_url}/jira"
token = "sim-jira-token"
deployment = "server"
budget = "50/1s"
timeout = "20s"

[datasets."{PD}"]
ttl = "{TTL:g}s"
keys = [{keys}]
idle_retire = "{IDLE_RETIRE:g}s"
min_refresh_interval = "1ms"

[datasets."{paged}"]
ttl = "{TTL:g}s"
keys = ["{paged_key}"]
min_refresh_interval = "1ms"
"""


def eventually(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Call `check` until it returns without an AssertionError or HTTP error and return its
    value; after `timeout` seconds, fail with its last error (which says what was seen)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, httpx.HTTPError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:g}s: {exc}") from exc
        time.sleep(interval)


class Node:
    """One `snapshots ROLE` process, named `name` (its SNAPSHOTS_INSTANCE), on its own port."""

    def __init__(self, role: str, name: str, config: Path, database_url: str, logs: Path) -> None:
        self.role = role
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = logs / f"{name}.log"
        self.stopped = False  # by SIGSTOP
        self.process = subprocess.Popen(
            [*SNAPSHOTS, role, "--config", str(config), "--port", str(self.port)],
            env=child_env(SNAPSHOTS_DATABASE_URL=database_url, SNAPSHOTS_INSTANCE=name),
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> None:
            if not self.alive():  # fail at once, not after the timeout
                log = self.log.read_text()[-3000:]
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{log}")
            assert httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200

        eventually(ready, timeout=timeout, interval=0.2)

    def get(self, path: str, timeout: float = 5.0) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=timeout)

    def worker_status(self) -> dict[str, Any]:
        """`GET /api/v1/worker`: role, instance, active, leader_since."""
        status: dict[str, Any] = self.get("/api/v1/worker", timeout=3).json()
        return status

    def kill(self) -> None:
        if self.stopped:
            self.resume()
        if self.alive():
            self.process.kill()
        self.process.wait(10)

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)
        self.stopped = False


class Topology:
    """API replicas and workers on one database; every process is killed by `close`."""

    def __init__(self, config: Path, database_url: str, logs: Path) -> None:
        self.config = config
        self.database_url = database_url
        self.logs = logs
        self.apis: list[Node] = []
        self.workers: list[Node] = []

    def start(self, *nodes: tuple[str, str]) -> list[Node]:
        """Start (role, name) processes together; each is registered before it is waited for,
        so `close` kills it even if it never gets ready."""
        started = []
        for role, name in nodes:
            node = Node(role, name, self.config, self.database_url, self.logs)
            (self.apis if role == "api" else self.workers).append(node)
            started.append(node)
        with ThreadPoolExecutor(len(started)) as pool:
            list(pool.map(lambda node: node.wait_ready(), started))
        return started

    def live_workers(self) -> list[Node]:
        return [w for w in self.workers if w.alive()]

    def active_worker(self, timeout: float = 15.0) -> Node:
        """The one running worker that reports itself active (waiting for one to be)."""

        def one_active() -> Node:
            active = [w for w in self.live_workers() if w.worker_status()["active"]]
            names = [w.name for w in active]
            assert len(active) == 1, f"active workers: {names}"
            return active[0]

        return eventually(one_active, timeout=timeout)

    def standby(self, active: Node) -> Node:
        [standby] = [w for w in self.live_workers() if w is not active]
        return standby

    def settle(self) -> tuple[Node, Node]:
        """Two running, unpaused workers (a new one replaces a killed one), one of them
        active: (active, standby)."""
        for worker in self.workers:
            if worker.stopped:
                worker.resume()
        while len(self.live_workers()) < 2:
            self.start(("worker", f"worker-{'abcdefghij'[len(self.workers)]}"))
        active = self.active_worker()
        return active, self.standby(active)

    def close(self) -> None:
        for node in [*self.workers, *self.apis]:
            node.kill()


def by_instance(simulator: Simulator, provider: str = "pagerduty") -> dict[str, int]:
    """Upstream requests answered by the simulator, by the gateway instance that sent them."""
    counts: dict[str, int] = simulator.counters()[provider]["by_instance"]
    return counts


def upstream_calls(simulator: Simulator, instance: str) -> int:
    """Upstream requests from a gateway instance answered by the simulator, every provider."""
    return sum(int(c["by_instance"].get(instance, 0)) for c in simulator.counters().values())


def in_flight(simulator: Simulator) -> list[dict[str, Any]]:
    """Upstream requests the simulator has received and not answered yet."""
    pending: list[dict[str, Any]] = simulator.http.get("/_sim/in_flight").json()
    return pending


def count(db: psycopg.Connection[Any], sql: str, *params: object) -> int:
    row = db.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def runs_stored_by(db: psycopg.Connection[Any], instance: str) -> int:
    """Refresh runs stored by a worker instance (`refresh_runs.instance`, migration 0006)."""
    return count(db, "SELECT count(*) FROM refresh_runs WHERE instance = %s", instance)


def miss_runs(db: psycopg.Connection[Any], key: str) -> int:
    """Cold-miss fetches of a key (`trigger = 'miss'`)."""
    return count(
        db,
        "SELECT count(*) FROM refresh_runs WHERE dataset = %s AND key = %s AND trigger = 'miss'",
        PD,
        key,
    )
