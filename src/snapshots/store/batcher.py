"""Refresh results written in batches: one transaction for many keys instead of one each.

A store write is about ten round trips through SQLAlchemy's asyncio bridge; at hundreds of
refreshes a second that CPU is what limits the worker. The batcher collects the results that
finish within `max_delay` seconds (or `max_items` of them) and stores them with
`Store.record_batch`: all of a batch or nothing (a `kill -9` leaves no part of one), unchanged
keys verified by one statement. Each caller's `write` returns once its batch has committed,
with the same outcome a write of its own would have had, so refresh handles, listeners and
single flight see nothing different. A batch whose leader epoch is no longer current stores
nothing and every write in it raises Fenced.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from snapshots.errors import Fenced
from snapshots.logs import get_logger
from snapshots.store.queries import UNFENCED, Store
from snapshots.store.records import Fencing, RefreshWrite, StoredRefresh, SuccessWrite

log = get_logger(__name__)

A = TypeVar("A")
R = TypeVar("R")


@dataclass(eq=False)
class _Pending:
    write: RefreshWrite
    fencing: Fencing
    future: asyncio.Future[StoredRefresh]
    taken: bool = field(default=False)


class WriteBatcher:
    """Stores refresh results in batches of up to `max_items`, gathered for `max_delay` s."""

    def __init__(self, store: Store, *, max_items: int = 200, max_delay: float = 0.002) -> None:
        self._store = store
        self._max_items = max_items
        self._max_delay = max_delay
        self._queue: deque[_Pending] = deque()
        self._task: asyncio.Task[None] | None = None

    async def write(self, write: RefreshWrite, fencing: Fencing = UNFENCED) -> StoredRefresh:
        """Store one refresh result with the next batch; returns what was stored once the
        batch committed. Fenced when the leader epoch in `fencing` is no longer current.

        A caller cancelled before its batch is taken leaves nothing behind; once the batch
        is being written it is not abandoned: the caller waits for it (milliseconds) and gets
        what was stored, so no result is stored without being reported.
        """
        loop = asyncio.get_running_loop()
        pending = _Pending(write, fencing, loop.create_future())
        self._queue.append(pending)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._flush_all(), name="snapshots-write-batcher")
        try:
            return await asyncio.shield(pending.future)
        except asyncio.CancelledError:
            if not pending.taken:
                self._queue.remove(pending)
                raise
            if pending.future.cancelled():  # the batcher itself was cancelled
                raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return await asyncio.shield(pending.future)

    async def _flush_all(self) -> None:
        """Write batches until the queue is empty (then end; the next write starts another)."""
        while self._queue:
            if len(self._queue) < self._max_items:
                await asyncio.sleep(self._max_delay)
            batch = self._take()
            try:
                await self._flush(batch)
            finally:
                for pending in batch:  # cancelled mid-batch: its callers must not wait forever
                    if not pending.future.done():
                        pending.future.cancel()

    def _take(self) -> list[_Pending]:
        """The oldest writes that can share a transaction: one fencing, each key once."""
        batch: list[_Pending] = []
        keys: set[tuple[str, str]] = set()
        kept: deque[_Pending] = deque()
        fencing = self._queue[0].fencing
        while self._queue and len(batch) < self._max_items:
            pending = self._queue.popleft()
            key = (pending.write.dataset, pending.write.key)
            if pending.fencing != fencing or key in keys:
                kept.append(pending)
                continue
            keys.add(key)
            pending.taken = True
            batch.append(pending)
        kept.extend(self._queue)
        self._queue = kept
        return batch

    async def _flush(self, batch: list[_Pending]) -> None:
        fencing = batch[0].fencing
        try:
            results = await self._store.record_batch([p.write for p in batch], fencing=fencing)
        except Fenced as exc:
            for pending in batch:
                _settle(pending, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            # One write's fault must not fail the others: store each alone, as before batching.
            log.warning(
                "store.batch_failed", writes=len(batch), error_type=type(exc).__name__, exc_info=exc
            )
            for pending in batch:
                try:
                    result = await self._one(pending)
                except Exception as single:
                    _settle(pending, single)
                else:
                    _settle(pending, result)
            return
        for pending, result in zip(batch, results, strict=True):
            _settle(pending, result)

    async def _one(self, pending: _Pending) -> StoredRefresh:
        write = pending.write
        if isinstance(write, SuccessWrite):
            return await self._store.record_success(
                write.dataset,
                write.key,
                write.fetched,
                write.timing,
                write.next_refresh_at,
                write.source,
                write.guard,
                write.accept_shrink,
                fencing=pending.fencing,
            )
        return await self._store.record_failure(
            write.dataset,
            write.key,
            write.error,
            write.timing,
            write.next_refresh_at,
            fencing=pending.fencing,
        )


def _settle(pending: _Pending, outcome: StoredRefresh | BaseException) -> None:
    if pending.future.done():
        return
    if isinstance(outcome, BaseException):
        pending.future.set_exception(outcome)
    else:
        pending.future.set_result(outcome)


class Coalescer(Generic[A, R]):
    """Calls made while a bulk query is running (or in the same event-loop turn) are answered
    together by the next one: `bulk(args)` returns one answer per argument, in order.

    For reads and id allocations, whose callers come in bursts (a forced refresh of a
    whole dataset): one round trip for many of them instead of one each."""

    def __init__(
        self, bulk: Callable[[list[A]], Awaitable[Sequence[R]]], max_items: int = 500
    ) -> None:
        self._bulk = bulk
        self._max_items = max_items
        self._waiting: deque[tuple[A, asyncio.Future[R]]] = deque()
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, arg: A) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((arg, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._answer_all())
        return await future  # a caller that gives up cancels only its own answer

    async def _answer_all(self) -> None:
        while self._waiting:
            await asyncio.sleep(0)  # callers of this turn join the query
            calls = [
                self._waiting.popleft() for _ in range(min(len(self._waiting), self._max_items))
            ]
            try:
                answers = await self._bulk([arg for arg, _ in calls])
            except Exception as exc:
                for _, future in calls:
                    if not future.done():
                        future.set_exception(exc)
                continue
            except BaseException:
                for _, future in calls:
                    future.cancel()
                raise
            for (_, future), answer in zip(calls, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
