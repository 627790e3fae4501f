"""One dedicated connection per process that LISTENs on the coordination channels and hands
each notification to its subscribers; it reconnects on its own after a database outage."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from snapshots.logs import get_logger
from snapshots.store import channels

log = get_logger(__name__)

RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0)


async def dedicated_connection(url: str) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    """An autocommit connection outside the pool, with libpq keepalives so a silently dead
    connection is noticed in seconds, not hours."""
    return await psycopg.AsyncConnection.connect(
        url,
        autocommit=True,
        connect_timeout=5,
        keepalives=1,
        keepalives_idle=5,
        keepalives_interval=2,
        keepalives_count=3,
    )


class NotificationListener:
    """LISTEN on every coordination channel; `subscribe` callbacks get each payload.

    Notifications sent while the connection is down are lost, so `on_reconnect` callbacks
    run after every reconnection (an API replica drops its whole cache then).
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._subscribers: dict[str, list[Callable[[str], None]]] = defaultdict(list)
        self._reconnected: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def subscribe(self, channel: str, callback: Callable[[str], None]) -> None:
        self._subscribers[channel].append(callback)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._reconnected.append(callback)

    async def start(self, timeout: float = 10.0) -> None:
        """Start listening; waits (up to `timeout`) for the first connection."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        failures = 0
        first = True  # the first connection needs no catching up; any later one does
        while True:
            try:
                conn = await dedicated_connection(self._url)
                async with conn:
                    for channel in (channels.CHANGES, channels.REQUESTS, channels.REPLIES):
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.connected.set()
                    if not first:
                        log.info("listener.reconnected")
                        for caught_up in self._reconnected:
                            _call(caught_up, "reconnect")
                    first, failures = False, 0
                    async for notify in conn.notifies():
                        for callback in self._subscribers.get(notify.channel, ()):
                            _call(callback, notify.channel, notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: wait, then listen again
                self.connected.clear()
                first = False
                log.warning("listener.disconnected", error_type=type(exc).__name__, exc_info=exc)
                await asyncio.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])
                failures += 1


def _call(callback: Callable[..., None], what: str, *args: str) -> None:
    """Run one subscriber; a raising one is logged and the connection keeps listening."""
    try:
        callback(*args)
    except Exception as exc:
        log.error(
            "listener.callback_failed", channel=what, error_type=type(exc).__name__, exc_info=exc
        )
