"""Refreshes asked of the active worker by a process that is not it (an API replica, or a
`serve` replica on standby): a row in the request queue, answered through NOTIFY.

No task runs per request: each waiter awaits a future that the reply completes. A reply can
be lost (the LISTEN connection was down); a waiter that hears nothing in time reads the
request's row once before giving up.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from snapshots.coordination.listener import NotificationListener
from snapshots.deadline import within
from snapshots.errors import RefreshTooSoon, SnapshotsError, Unavailable
from snapshots.handles import (
    STEPPED_DOWN,
    NegativeCache,
    RefreshListener,
    RefreshResult,
    too_slow,
)
from snapshots.registry import Registry
from snapshots.store import RequestQueue, Trigger, channels
from snapshots.store.records import KeySource
from snapshots.store.requests import INTERRUPTED, reply_of

FALLBACK_READ_SECONDS = 2.0
EARLY_REPLIES = 1024  # replies kept for requests nobody waits on yet (a race, or a late result())

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


@dataclass(frozen=True)
class RemoteHandle:
    """A refresh the active worker started (or joined) for this replica's request."""

    refresher: RemoteRefresher
    request_id: int
    run_id: int
    joined: bool
    dataset: str
    key: str

    async def result(self, timeout: float) -> RefreshResult:
        reply = await self.refresher.wait_reply(self.request_id, _DONE, timeout)
        if reply is None:
            raise too_slow(f"{self.dataset} {self.key}", timeout)
        return self.refresher.result_of(reply, self.dataset, self.key)


class RemoteRefresher:
    """The refresher interface the read side uses, served by whichever worker is active."""

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
        self._waiters: dict[int, tuple[set[str], asyncio.Future[channels.Reply]]] = {}
        self._replies: OrderedDict[int, channels.Reply] = OrderedDict()
        self._missing = NegativeCache()  # from the worker's answers, for this replica's reads
        listener.subscribe(channels.REPLIES, self._on_reply)

    def _on_reply(self, payload: str) -> None:
        reply = channels.decode_reply(payload)
        if reply is None:
            return
        self._replies[reply.id] = reply
        self._replies.move_to_end(reply.id)
        while len(self._replies) > EARLY_REPLIES:
            self._replies.popitem(last=False)
        waiter = self._waiters.get(reply.id)
        if waiter is not None and reply.status in waiter[0] and not waiter[1].done():
            waiter[1].set_result(reply)

    @property
    def in_flight_count(self) -> int:
        return len(self._waiters)

    def add_listener(self, listener: RefreshListener) -> None:
        """Remote refreshes report through the change feed, not here."""

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
        *,
        since: float | None = None,
        seen_run_id: int | None = None,
    ) -> RemoteHandle:
        """Ask for a cold miss's fetch; `seen_run_id` lets the worker answer with a refresh
        newer than what the reader saw instead of fetching again."""
        self._registry.enabled_dataset(dataset).check_key(key)
        request_id = await self._queue.submit(dataset, key, forced=False, seen_run_id=seen_run_id)
        return await self._started(request_id, dataset, key)

    async def force(
        self, dataset: str, key: str, accept_shrink: bool = False, trigger: Trigger = "demand"
    ) -> RemoteHandle:
        self._registry.enabled_dataset(dataset).check_key(key)
        request_id = await self._queue.submit(
            dataset, key, forced=True, accept_shrink=accept_shrink
        )
        return await self._started(request_id, dataset, key)

    async def _started(self, request_id: int, dataset: str, key: str) -> RemoteHandle:
        """The worker's acknowledgement: the run it started or joined, or why it refused."""
        reply = await self.wait_reply(request_id, _ANSWERED, self._answer_seconds)
        if reply is None:
            raise Unavailable(
                f"no active worker answered within {self._answer_seconds:g}s; check that "
                "`snapshots worker` (or `snapshots serve`) runs against this database",
                retry_after=5,
            )
        if reply.status == "refused":
            message = reply.error or "refused by the active worker"
            if reply.error_code == RefreshTooSoon.code:
                raise RefreshTooSoon(message, retry_after=reply.retry_after)
            raise _error_class(reply.error_code or "")(message, retry_after=reply.retry_after)
        return RemoteHandle(self, request_id, reply.run_id or 0, bool(reply.joined), dataset, key)

    async def wait_reply(
        self, request_id: int, statuses: set[str], timeout: float
    ) -> channels.Reply | None:
        """The request's reply once its status is one of `statuses`; after `timeout` with no
        such reply, one read of its row; None if that does not have it either."""
        heard = self._replies.get(request_id)
        if heard is not None and heard.status in statuses:
            return heard
        future: asyncio.Future[channels.Reply] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = (statuses, future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            try:
                row = await within(self._queue.get(request_id), FALLBACK_READ_SECONDS)
            except Exception:
                return None
            return reply_of(row) if row is not None and row.status in statuses else None
        finally:
            self._waiters.pop(request_id, None)

    def result_of(self, reply: channels.Reply, dataset: str, key: str) -> RefreshResult:
        run_id = reply.run_id or 0
        if reply.status != "finished":
            error = "the active worker did not finish the refresh (it may have stopped)"
            return RefreshResult.interruption(run_id, error)
        if reply.error_code == INTERRUPTED:
            return RefreshResult.interruption(run_id, reply.error or STEPPED_DOWN)
        if reply.not_found:
            negative = self._registry.dataset(dataset).negative_ttl_seconds
            self._missing.remember(dataset, key, reply.error or "not found", negative)
        outcome = (
            reply.outcome if reply.outcome in ("changed", "unchanged", "rejected") else "failed"
        )
        return RefreshResult(
            run_id,
            outcome,  # type: ignore[arg-type]
            None,
            reply.error if outcome == "failed" else None,
            bool(reply.not_found),
            None,
            note=reply.error if outcome == "rejected" else None,
        )
