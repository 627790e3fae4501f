"""Leader election of the active worker: a PostgreSQL session advisory lock, held on a
dedicated connection and checked every interval. The lock goes when that connection goes.

The leader also writes a heartbeat each check. A worker that wins the lock while the last
heartbeat (of someone else) is recent waits one interval before refreshing: by then the old
leader, if alive but cut off, has failed its own check and stopped.

Each new leader takes the next epoch; the old one's writes carry its own and are refused
(see `Store.record_success`). A leader that is stopped (SIGSTOP, a frozen VM) keeps its
connection and so its lock: `idle_session_timeout` (3 intervals) has PostgreSQL end that
session, so the lock goes; the stopped leader's lease (`Fence`, 2.5 intervals from its last check) has run out by
then, so once resumed it makes no upstream call before it notices.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import psycopg

from snapshots.coordination.listener import dedicated_connection
from snapshots.deadline import within
from snapshots.logs import get_logger

log = get_logger(__name__)


class LeadershipLost(Exception):
    """The heartbeat found another leader's epoch."""


LOCK_KEY = 0x736E617073686F74  # "snapshot": the same constant in every process of a deployment


class Leadership:
    """The advisory lock of this process: try to take it, check it is still held, release it."""

    def __init__(self, url: str, instance: str, interval_seconds: float) -> None:
        self._url = url
        self.instance = instance
        self.interval = interval_seconds
        self.epoch: int | None = None  # taken with the lock
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None

    async def try_acquire(self) -> tuple[bool, bool]:
        """(won the lock, must wait one interval before refreshing); never raises.

        Winning takes the next epoch (`self.epoch`)."""
        try:
            conn = await self._connection()
            row = await (
                await conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            ).fetchone()
            if not row or not row[0]:
                return False, False
            recent = await (
                await conn.execute(
                    "SELECT heartbeat_at > now() - %s FROM worker_leader"
                    " WHERE id = 1 AND instance <> %s",  # our own heartbeat needs no waiting out
                    (timedelta(seconds=self.interval * 2), self.instance),
                )
            ).fetchone()
            taken = await (
                await conn.execute(
                    "INSERT INTO worker_leader (id, instance, heartbeat_at, epoch)"
                    " VALUES (1, %s, now(), 1) ON CONFLICT (id) DO UPDATE SET"
                    " instance = excluded.instance, heartbeat_at = now(),"
                    " epoch = worker_leader.epoch + 1 RETURNING epoch",
                    (self.instance,),
                )
            ).fetchone()
            assert taken is not None
            self.epoch = int(taken[0])
            return True, bool(recent and recent[0])
        except Exception as exc:  # the database is down or the schema is wrong: say which
            log.warning(
                "leader.acquire_failed",
                instance=self.instance,
                error_type=type(exc).__name__,
                exc_info=exc,
            )
            await self._drop()
            return False, False

    async def check(self) -> bool:
        """Whether the lock is still held: the connection answers (and the heartbeat is written)
        within one interval."""
        conn = self._conn
        if conn is None:
            return False
        try:
            await within(self._beat(conn), self.interval)
        except Exception as exc:
            log.warning(
                "leader.check_failed",
                instance=self.instance,
                error_type=type(exc).__name__,
                exc_info=exc,
            )
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        """Hand over cleanly: clear the heartbeat (the next leader need not wait) and unlock."""
        conn = self._conn
        if conn is None:
            return
        try:
            await conn.execute(
                "UPDATE worker_leader SET heartbeat_at = NULL WHERE id = 1 AND epoch = %s",
                (self.epoch,),
            )
            await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        except Exception as exc:  # the lock goes with the connection anyway; the next leader waits
            log.warning(
                "leader.release_failed",
                instance=self.instance,
                error_type=type(exc).__name__,
                exc_info=exc,
            )
        await self._drop()

    async def _beat(self, conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
        """The heartbeat, if the epoch is still ours (LeadershipLost otherwise)."""
        cursor = await conn.execute(
            "UPDATE worker_leader SET heartbeat_at = now() WHERE id = 1 AND epoch = %s",
            (self.epoch,),
        )
        if cursor.rowcount != 1:
            raise LeadershipLost(f"epoch {self.epoch} was taken over")

    async def _connection(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            conn = await dedicated_connection(self._url)
            try:  # a stopped leader's session (and lock) ends after 3 silent intervals
                timeout_ms = int(self.interval * 3 * 1000)
                await conn.execute(f"SET idle_session_timeout = {timeout_ms}")
            except psycopg.Error as exc:
                log.warning(
                    "leader.no_idle_session_timeout",
                    hint="PostgreSQL 14 or newer ends a stopped leader's session",
                    error_type=type(exc).__name__,
                )
            self._conn = conn
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
