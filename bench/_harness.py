"""Shared benchmark plumbing: a database, the simulator, and the service in its own process.

Not a test: benchmarks print figures and ratios against a baseline measured in the same run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from snapshots.database import embedded_postgres, migrate, sqlalchemy_url


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
