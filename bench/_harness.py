"""Shared benchmark plumbing: a database, the simulator and the service in their own processes,
and readings of a process's CPU and memory.

Not a test: benchmarks print figures and ratios against a baseline measured in the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from snapshots.database import embedded_postgres, libpq_url, migrate, sqlalchemy_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def database() -> Iterator[str]:
    """SNAPSHOTS_DATABASE_URL if set, else a throwaway embedded PostgreSQL; migrated."""
    url = os.environ.get("SNAPSHOTS_DATABASE_URL")
    if url:
        migrate(sqlalchemy_url(url))
        yield sqlalchemy_url(url)
        return
    with (
        tempfile.TemporaryDirectory(prefix="snapshots-bench-") as data,
        embedded_postgres(Path(data)) as url,
    ):
        migrate(url)
        yield url


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], ready_url: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, waited for until `ready_url` answers 200, terminated on exit."""
    with log.open("wb") as out:
        child = subprocess.Popen(
            args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if child.poll() is not None:
                    raise RuntimeError(f"{args[:3]} exited early; see {log}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(ready_url, timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{ready_url} did not answer; see {log}")
                time.sleep(0.1)
            yield child
        finally:
            child.terminate()
            child.wait(30)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def truncate(url: str) -> None:
    """Empty every table the service writes, so a gateway starts with no keys and no history."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(
            "TRUNCATE refresh_runs, dataset_keys, snapshots, datasets RESTART IDENTITY CASCADE"
        )


def query(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of one SQL query on the service's database."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


class Simulator:
    """The simulator in its own process (its CPU is not the bench's), and its control API."""

    def __init__(self, url: str, pid: int) -> None:
        self.url = url
        self.pid = pid
        self.http = httpx.Client(base_url=url, timeout=30)
        self._sizes: dict[str, int] = {}

    def reset(self) -> None:
        """Counters, limits and latency back to defaults; the sizes set with `size` are kept."""
        self.http.post("/_sim/reset").raise_for_status()
        if self._sizes:
            self.http.put("/_sim/size", json=self._sizes).raise_for_status()

    def counters(self, provider: str) -> dict[str, Any]:
        """`{"requests": n, "by_status": {...}, "violations": n}` of one fake upstream."""
        counters: dict[str, Any] = self.http.get("/_sim/counters").json()[provider]
        return counters

    def requests(self, provider: str) -> int:
        return int(self.counters(provider)["requests"])

    def size(self, **sizes: int) -> None:
        """Grow the simulator: schedules=, projects=, repos=."""
        self.http.put("/_sim/size", json=sizes).raise_for_status()
        self._sizes.update(sizes)

    def latency(self, seconds: float) -> None:
        self.http.put("/_sim/latency", json={"seconds": seconds}).raise_for_status()

    def limit(self, provider: str, requests: int, period_seconds: float) -> None:
        body = {"requests": requests, "period_seconds": period_seconds}
        self.http.put(f"/_sim/limits/{provider}", json=body).raise_for_status()


@contextlib.contextmanager
def simulator(log_dir: Path) -> Iterator[Simulator]:
    """`snapshots simulate` on a free port, reset to its defaults."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = python("-m", "snapshots.cli", "simulate", "--port", str(port))
    with process(args, {}, f"{url}/_sim/counters", log_dir / "simulator.log") as child:
        sim = Simulator(url, child.pid)
        try:
            yield sim
        finally:
            sim.http.close()


@dataclass(frozen=True)
class Gateway:
    """`snapshots serve` running in its own process."""

    url: str
    pid: int
    log: Path


def provider_toml(name: str, sim: Simulator, **settings: str | int) -> str:
    """A `[providers.NAME]` table on the simulator with its default token, plus `settings`."""
    lines = [
        f"[providers.{name}]",
        f'base_url = "{sim.url}/{name}"',
        f'token = "sim-{name}-token"',
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def gateway(
    jobs_toml: str, database_url: str, work: Path, name: str = "gateway"
) -> Iterator[Gateway]:
    """`snapshots serve` on `jobs_toml` (written to `work`) and an already migrated database."""
    config = work / f"{name}.toml"
    config.write_text(jobs_toml)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = python(
        "-m", "snapshots.cli", "serve", "--config", str(config), "--port", str(port), "--no-migrate"
    )
    env = {"SNAPSHOTS_DATABASE_URL": database_url, "SNAPSHOTS_LOG_FORMAT": "json"}
    log = work / f"{name}.log"
    with process(args, env, f"{url}/healthz", log) as child:
        yield Gateway(url, child.pid, log)


def log_events(log: Path, event: str) -> int:
    """How many lines of a JSON log are the structured event `event`."""
    needle = f'"event": "{event}"'
    with log.open(errors="replace") as lines:
        return sum(needle in line for line in lines)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used (Linux /proc; threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, proc(5)).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int, field: str = "VmHWM") -> float:
    """A memory figure of /proc/<pid>/status in MiB: VmHWM is the peak resident set, VmRSS now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no {field} in /proc/{pid}/status")


def machine() -> str:
    """Where and when a figure was measured, for the first line of a benchmark's output."""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
