"""Refreshes asked of the active worker by a process that is not it (an API replica, or a
`serve` replica on standby): a row in the request queue, answered through LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

from snapshots.clock import utcnow
from snapshots.coordination import channels
from snapshots.coordination.listener import NotificationListener
from snapshots.errors import RefreshTooSoon, SnapshotsError, Unavailable
from snapshots.refresher import (
    NegativeCache,
    RefreshListener,
    RefreshResult,
    Started,
    wait_bounded,
)
from snapshots.registry import Registry
from snapshots.store import RefreshRequest, RequestQueue, Trigger
from snapshots.store.records import KeySource

POLL_SECONDS = 1.0  # re-read the row this often too, in case a notification was missed
GIVE_UP_SECONDS = 300.0  # a refresh never answered within this is reported failed

_ANSWERED = {"started", "refused", "finished", "expired"}
_DONE = {"finished", "expired"}


def _error_class(code: str) -> type[SnapshotsError]:
    """The SnapshotsError subclass the worker refused with, by its code."""
    pending: list[type[SnapshotsError]] = [SnapshotsError]
    while pending:
        kind = pending.pop()
        if kind.code == code:
            return kind
        pending.extend(kind.__subclasses__())
    return Unavailable


class RemoteRefresher:
    """The refresher interface the API uses, served by whichever worker is active."""

    def __init__(
        self,
        registry: Registry,
        queue: RequestQueue,
        listener: NotificationListener,
        answer_seconds: float,
    ) -> None:
        self._registry = registry
        self._queue = queue
        self._answer_seconds = answer_seconds
        self._events: dict[int, asyncio.Event] = {}
        self._missing = NegativeCache()  # from the worker's answers, for this replica's reads
        listener.subscribe(channels.REPLIES, self._on_reply)

    def _on_reply(self, payload: str) -> None:
        reply = channels.decode_reply(payload)
        event = self._events.get(reply.id) if reply is not None else None
        if event is not None:
            event.set()

    @property
    def in_flight_count(self) -> int:
        return len(self._events)

    def add_listener(self, listener: RefreshListener) -> None:
        """Remote refreshes report through the change feed (`Runtime.changes`), not here."""

    def known_missing(self, dataset: str, key: str) -> str | None:
        return self._missing.get(dataset, key)

    async def running(self, run_id: int) -> tuple[str, str] | None:
        return await self._queue.running(run_id)

    async def start(
        self,
        dataset: str,
        key: str,
        trigger: Trigger,
        source: KeySource = "demand",
        accept_shrink: bool = False,
        since: float | None = None,
    ) -> Started:
        """Ask for a cold miss's fetch; `since` (monotonic) lets the worker answer with a
        refresh that finished after the reader looked instead of fetching again."""
        self._registry.enabled_dataset(dataset).check_key(key)
        looked_at = (
            utcnow() - timedelta(seconds=time.monotonic() - since) if since is not None else None
        )
        request_id = await self._queue.submit(dataset, key, forced=False, looked_at=looked_at)
        return await self._started(request_id, dataset, key)

    async def force(
        self, dataset: str, key: str, accept_shrink: bool = False, trigger: Trigger = "demand"
    ) -> Started:
        self._registry.enabled_dataset(dataset).check_key(key)
        request_id = await self._queue.submit(
            dataset, key, forced=True, accept_shrink=accept_shrink
        )
        return await self._started(request_id, dataset, key)

    async def refresh_within(
        self,
        dataset: str,
        key: str,
        trigger: Trigger,
        wait_seconds: float,
        source: KeySource = "demand",
        since: float | None = None,
    ) -> RefreshResult:
        started = await self.start(dataset, key, trigger, source, since=since)
        return await wait_bounded(started, wait_seconds, f"{dataset} {key}")

    async def _started(self, request_id: int, dataset: str, key: str) -> Started:
        """The worker's acknowledgement: the run it started or joined, or why it refused."""
        self._events[request_id] = asyncio.Event()
        try:
            row = await self._wait(request_id, _ANSWERED, self._answer_seconds)
        except BaseException:
            self._events.pop(request_id, None)
            raise
        if row is None:
            self._events.pop(request_id, None)
            raise Unavailable(
                f"no active worker answered within {self._answer_seconds:g}s; check that "
                "`snapshots worker` (or `snapshots serve`) runs against this database",
                retry_after=5,
            )
        if row.status == "refused":
            self._events.pop(request_id, None)
            message = row.error or "refused by the active worker"
            if row.error_code == RefreshTooSoon.code:
                raise RefreshTooSoon(message, retry_after=row.retry_after)
            raise _error_class(row.error_code or "")(message, retry_after=row.retry_after)
        task = asyncio.get_running_loop().create_task(self._result(row, dataset, key))
        return Started(row.run_id or 0, task, joined=bool(row.joined))

    async def _result(self, row: RefreshRequest, dataset: str, key: str) -> RefreshResult:
        try:
            if row.status not in _DONE:
                row = await self._wait(row.id, _DONE, GIVE_UP_SECONDS) or row
        finally:
            self._events.pop(row.id, None)
        if row.status != "finished":
            error = "the active worker did not finish the refresh (it may have stopped)"
            return RefreshResult(row.run_id or 0, "failed", None, error, False, None)
        if row.not_found:
            negative = self._registry.dataset(dataset).negative_ttl_seconds
            self._missing.remember(dataset, key, row.error or "not found", negative)
        outcome = row.outcome if row.outcome in ("changed", "unchanged", "rejected") else "failed"
        return RefreshResult(
            row.run_id or 0,
            outcome,  # type: ignore[arg-type]
            None,
            row.error if outcome == "failed" else None,
            bool(row.not_found),
            None,
            note=row.error if outcome == "rejected" else None,
        )

    async def _wait(
        self, request_id: int, statuses: set[str], timeout: float
    ) -> RefreshRequest | None:
        """The request once its status is one of `statuses`, or None after `timeout`."""
        event = self._events.setdefault(request_id, asyncio.Event())
        deadline = time.monotonic() + timeout
        while True:
            event.clear()  # before reading, so a reply arriving meanwhile is not lost
            row = await self._queue.get(request_id)
            if row is not None and row.status in statuses:
                return row
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, POLL_SECONDS))
