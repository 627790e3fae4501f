"""Who stops the embedded PostgreSQL: real `snapshots` processes on one data directory, killed
with SIGKILL or stopped with SIGTERM, and the postmaster named in its postmaster.pid watched."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from helpers import SNAPSHOTS, Service, Simulator, child_env, free_port, jobs_toml, wait_for


def _postmaster(data_dir: Path) -> int | None:
    """The pid in <data_dir>/pgdata/postmaster.pid, if there is one."""
    try:
        first = (data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0]
    except FileNotFoundError:
        return None
    return int(first) if first.strip().isdigit() else None


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie nobody has reaped yet counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """Live child processes of `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def _kill9(service: Service) -> None:
    service.process.kill()
    service.process.wait(timeout=10)


@pytest.fixture
def data_dir(services: list[Service]) -> Iterator[Path]:
    """A fresh SNAPSHOTS_DATA_DIR; afterwards no service and no postmaster of it is left running.

    Not under pytest's tmp_path: run as root, PostgreSQL runs as another user that must reach
    the directory, and a pytest session starting meanwhile makes its own temp root private."""
    path = Path(tempfile.mkdtemp(prefix="snapshots-embedded-"))
    yield path
    for service in services:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()
    pid = _postmaster(path)
    if pid is not None and _running(pid):
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown: its children go with it
        wait_for(lambda: not _running(pid), timeout=10)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def serve(
    tmp_path: Path, data_dir: Path, simulator: Simulator, services: list[Service]
) -> Callable[[str], Service]:
    """Start `snapshots serve` on the embedded PostgreSQL in `data_dir` (no SNAPSHOTS_DATABASE_URL)."""
    config = tmp_path / "jobs.toml"
    config.write_text(jobs_toml(simulator.url))

    def start(name: str) -> Service:
        port = free_port()
        service = Service(
            ["serve", "--config", str(config), "--port", str(port)],
            child_env(SNAPSHOTS_DATA_DIR=str(data_dir)),
            port,
            tmp_path / f"{name}.log",
        )
        services.append(service)
        return service

    return start


def _running_postmaster(data_dir: Path) -> int:
    pid = _postmaster(data_dir)
    assert pid is not None, "no postmaster.pid in the data directory"
    assert _running(pid)
    return pid


def test_killed_service_takes_its_embedded_postgres_down_with_it(
    serve: Callable[[str], Service], data_dir: Path
) -> None:
    first = serve("first")
    postmaster = _running_postmaster(data_dir)

    _kill9(first)

    wait_for(lambda: not _running(postmaster), timeout=20)
    second = serve("second")
    assert _running_postmaster(data_dir) != postmaster  # a server of its own, not a leftover
    assert second.terminate() == 0
    assert _postmaster(data_dir) is None


def test_orphaned_postgres_is_adopted_and_stopped_by_the_next_clean_stop(
    serve: Callable[[str], Service], data_dir: Path
) -> None:
    first = serve("first")
    postmaster = _running_postmaster(data_dir)
    for helper in _children(first.process.pid):  # as if the whole service were killed at once
        os.kill(helper, signal.SIGKILL)
    _kill9(first)
    assert _running(postmaster)  # orphaned: nothing was left to stop it

    second = serve("second")

    assert _running_postmaster(data_dir) == postmaster  # joined, not started anew
    assert second.terminate() == 0
    assert not _running(postmaster)
    assert _postmaster(data_dir) is None


def test_server_outlives_processes_that_leave_while_another_still_uses_it(
    serve: Callable[[str], Service], data_dir: Path
) -> None:
    owner = serve("owner")
    postmaster = _running_postmaster(data_dir)
    joiner = subprocess.run(
        [*SNAPSHOTS, "migrate"],
        env=child_env(SNAPSHOTS_DATA_DIR=str(data_dir)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert joiner.returncode == 0, joiner.stderr
    assert _running(postmaster)  # a command that joined and left did not stop it
    second = serve("second")
    assert _running_postmaster(data_dir) == postmaster
    helpers = _children(owner.process.pid)

    _kill9(owner)

    wait_for(lambda: not any(_running(pid) for pid in helpers), timeout=20)
    assert _running(postmaster)  # the killed owner's watch left it to the live holder
    assert httpx.get(f"{second.url}/readyz", timeout=5).status_code == 200
    assert second.terminate() == 0
    assert not _running(postmaster)
    assert _postmaster(data_dir) is None
