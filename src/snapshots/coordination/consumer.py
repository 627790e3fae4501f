"""The active worker's side of refresh requests: claim what API replicas queued, run it on the
local refresher (joining a refresh already running), and answer each step through the queue."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

from snapshots.clock import utcnow
from snapshots.coordination.listener import NotificationListener
from snapshots.errors import SnapshotsError
from snapshots.handles import FutureHandle
from snapshots.logs import get_logger
from snapshots.refresher import Refresher
from snapshots.store import RefreshRequest, RequestQueue, Store, channels
from snapshots.store.requests import INTERRUPTED

log = get_logger(__name__)

EXPIRE_SECONDS = (
    300.0  # nobody waits longer for an answer (read_wait and refresh waits are shorter)
)
KEEP_ANSWERED = timedelta(hours=1)
PRUNE_EVERY_SECONDS = 600.0


class RequestConsumer:
    """Claims pending requests when notified (and every `poll_seconds`, in case a notification
    was missed) while this process is the active worker."""

    def __init__(
        self,
        queue: RequestQueue,
        store: Store,
        refresher: Refresher,
        listener: NotificationListener,
        poll_seconds: float,
    ) -> None:
        self._queue = queue
        self._store = store
        self._refresher = refresher
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._pruned = 0.0
        listener.subscribe(channels.REQUESTS, lambda _: self._wake.set())

    async def start(self) -> None:
        """Close what a previous worker claimed and never answered (its readers get 503 and
        ask again), then take requests."""
        if self._task is None:
            closed = await self._queue.close_orphans(
                "the worker that took this request stopped before answering; retry shortly"
            )
            if closed:
                log.warning("requests.orphans_closed", requests=closed)
            self._wake.set()  # requests queued while no worker was active
            self._task = asyncio.get_running_loop().create_task(self._run(), name="requests")

    async def stop(self, grace_seconds: float = 2.0) -> None:
        """Take no more requests; answer the ones in hand (their refreshes end as stepped
        down once the refresher is suspended) for up to `grace_seconds`, then give up."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        handlers = list(self._handlers)
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=grace_seconds)
            for handler in pending:
                handler.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            self._wake.clear()
            try:
                for request in await self._queue.claim(EXPIRE_SECONDS):
                    handler = asyncio.get_running_loop().create_task(self._handle(request))
                    self._handlers.add(handler)
                    handler.add_done_callback(self._handlers.discard)
                if time.monotonic() - self._pruned > PRUNE_EVERY_SECONDS:
                    self._pruned = time.monotonic()
                    await self._queue.prune(utcnow() - KEEP_ANSWERED)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down: the next wake or poll retries
                log.warning("requests.claim_failed", error_type=type(exc).__name__, exc_info=exc)

    async def _handle(self, request: RefreshRequest) -> None:
        """Answer one request; a failure to answer (the database went away) is logged, and
        the asking replica gives up after its own timeout."""
        try:
            await self._answer(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "requests.answer_failed",
                request=request.id,
                error_type=type(exc).__name__,
                exc_info=exc,
            )

    async def _answer(self, request: RefreshRequest) -> None:
        try:
            handle = await self._start(request)
        except SnapshotsError as exc:
            await self._queue.refused(request.id, exc.code, exc.message, exc.retry_after)
            return
        if handle is None:
            return
        await self._queue.started(request.id, handle.run_id, handle.joined)
        result = await asyncio.shield(handle.future)
        await self._queue.finished(
            request.id,
            result.run_id,
            result.outcome,
            result.error or result.note,
            result.not_found,
            INTERRUPTED if result.interrupted else None,
        )

    async def _start(self, request: RefreshRequest) -> FutureHandle | None:
        """The refresh answering `request`; None when it was answered already (a cold miss
        whose key was refreshed after the reader looked, so no second fetch is needed: a run
        newer than the newest the reader had seen; run ids, not clocks of two hosts)."""
        if request.forced:
            return await self._refresher.force(request.dataset, request.key, request.accept_shrink)
        if request.seen_run_id is not None:
            latest = await self._store.latest(request.dataset, request.key)
            newest = await self._store.newest_run_id(request.dataset, request.key)
            if (
                latest is not None
                and latest.snapshot is not None
                and newest is not None
                and newest > request.seen_run_id
            ):
                await self._queue.finished(
                    request.id, newest, latest.state.last_outcome or "unchanged", None, False
                )
                return None
        return await self._refresher.start(request.dataset, request.key, "miss")
