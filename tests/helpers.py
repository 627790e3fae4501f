"""Test helpers: handles on the simulator and a running gateway, a jobs.toml writer, polling."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from snapshots.uvicorn_runner import BackgroundServer

SIM_TOKEN = "sim-pagerduty-token"
SNAPSHOTS = [sys.executable, "-m", "snapshots.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """This environment without SNAPSHOTS_* settings, plus `extra`: for service processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSHOTS_")}
    env.update(extra)
    return env


class Service:
    """A `snapshots` process started in the background, stopped with SIGTERM like a supervisor would."""

    def __init__(self, args: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [*SNAPSHOTS, *args], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
        )
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        wait_for(self._ready, timeout=60)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"service exited with {self.process.returncode}:\n{self.log.read_text()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


class Simulator:
    """Test-side handle on the simulator's control API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def requests(self, provider: str = "pagerduty") -> int:
        return int(self.http.get("/_sim/counters").json()[provider]["requests"])

    def counters(self) -> dict[str, Any]:
        """Per provider: `{"requests": n, "by_status": {"200": n, ...}, "violations": n}`."""
        counters: dict[str, Any] = self.http.get("/_sim/counters").json()
        return counters

    def mutate(self, provider: str, object_id: str) -> None:
        """Change an object's data one step (schedule, policy, `acme/repo-03`, `PRJ3`)."""
        self.http.post(f"/_sim/mutate/{provider}/{object_id}").raise_for_status()

    def rotate_schedule(self, schedule_id: str) -> None:
        self.mutate("pagerduty", schedule_id)

    def set_limit(self, provider: str, requests: int, period_seconds: float) -> None:
        body = {"requests": requests, "period_seconds": period_seconds}
        self.http.put(f"/_sim/limits/{provider}", json=body).raise_for_status()

    def clear_limit(self, provider: str) -> None:
        self.http.delete(f"/_sim/limits/{provider}").raise_for_status()

    def add_fault(self, provider: str, kind: str, **options: Any) -> None:
        """Queue a fault (`count`, `path`, `status`, `retry_after`, `seconds` as options)."""
        body = {"kind": kind, **options}
        self.http.post(f"/_sim/faults/{provider}", json=body).raise_for_status()

    def clear_faults(self, provider: str) -> None:
        self.http.delete(f"/_sim/faults/{provider}").raise_for_status()

    def set_jira_deployment(self, deployment: str) -> None:
        """Have serverInfo report "Server" (the default) or "Cloud"."""
        self.http.put("/_sim/jira/deployment", json={"type": deployment}).raise_for_status()

    def set_token(self, provider: str, token: str) -> None:
        self.http.put(f"/_sim/tokens/{provider}", json={"token": token}).raise_for_status()

    def add_account(self, provider: str, account: str, token: str) -> None:
        """Have the provider accept `token` as a further account (counted in `by_account`)."""
        self.http.put(
            f"/_sim/accounts/{provider}/{account}", json={"token": token}
        ).raise_for_status()

    def set_latency(self, seconds: float) -> None:
        self.http.put("/_sim/latency", json={"seconds": seconds}).raise_for_status()


def jobs_toml(
    simulator_url: str,
    *,
    token: str | None = SIM_TOKEN,
    ttl: str = "5m",
    keys: tuple[str, ...] = (),
    extra: str = "",
    service: str = "",
) -> str:
    token_line = f'token = "{token}"' if token is not None else ""
    key_list = ", ".join(f'"{k}"' for k in keys)
    return f"""
[service]
read_wait = "10s"
{service}

[providers.pagerduty]
base_url = "{simulator_url}/pagerduty"
{token_line}
budget = "900/60s"
timeout = "5s"

[datasets."pagerduty.schedule_users"]
ttl = "{ttl}"
keys = [{key_list}]
{extra}
"""


def sim_providers(
    simulator_url: str,
    *,
    pagerduty: str = "",
    github: str = "",
    jira: str = "",
    without_token: tuple[str, ...] = (),
) -> str:
    """The three provider tables pointing at the simulator with its tokens, plus each
    provider's extra TOML lines; providers in `without_token` get none (disabled)."""
    extra = {"pagerduty": pagerduty, "github": github, "jira": jira}
    tables = []
    for provider, lines in extra.items():
        token = "" if provider in without_token else f'token = "sim-{provider}-token"'
        tables.append(
            f'[providers.{provider}]\nbase_url = "{simulator_url}/{provider}"\n{token}\n{lines}\n'
        )
    return "\n".join(tables)


class Gateway:
    """A running gateway (API + scheduler) on a background thread, and an HTTP client for it."""

    def __init__(self, server: BackgroundServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def snapshot(self, dataset: str, key: str) -> httpx.Response:
        return self.http.get(f"/api/v1/snapshots/{dataset}/{key}")

    def stop(self) -> None:
        self.http.close()
        self.server.stop()


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy and return it; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


def runs_with_outcome(db: psycopg.Connection[Any], outcome: str) -> int:
    """How many refresh runs ended with `outcome`."""
    row = db.execute("SELECT count(*) FROM refresh_runs WHERE outcome = %s", (outcome,)).fetchone()
    return int(row[0]) if row else 0


def canonical_hash(payload: Any) -> str:
    """SHA-256 of a payload as sorted, compact JSON, computed independently of the service."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@contextlib.contextmanager
def rotating(
    simulator: Simulator, schedules: tuple[str, ...], every: float = 0.05
) -> Iterator[None]:
    """Rotate random schedules' rosters upstream in the background, so refreshes keep
    writing new versions."""
    stop = threading.Event()

    def rotate() -> None:
        with httpx.Client(base_url=simulator.url, timeout=5) as http:
            while not stop.wait(every):
                http.post(f"/_sim/mutate/pagerduty/{random.choice(schedules)}")

    thread = threading.Thread(target=rotate, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def access_lines(caplog: pytest.LogCaptureFixture, request_id: str, count: int = 1) -> list[str]:
    """The access-log lines of the request(s) with `request_id`, once `count` are captured: the
    access log writes a turn's lines after its responses, so a test that reads the log right
    after a response waits for them (and so also shows they were written)."""

    def lines() -> list[str] | None:
        found = [
            line
            for record in caplog.records
            if record.name == "snapshots.access"
            for line in record.getMessage().splitlines()
            if f"request_id={request_id} " in line or f'"request_id": "{request_id}"' in line
        ]
        return found if len(found) >= count else None

    found: list[str] = wait_for(lines, timeout=10)
    return found


CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, installed by .ci/run
CHROMIUM_ARGS = [  # headless, and nothing of its own on the (closed) network
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
