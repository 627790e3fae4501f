"""The active-worker role: stand by until this process holds the leader lock, then run the
scheduler and answer refresh requests; stop both the moment a check of the lock fails."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from snapshots.clock import utcnow
from snapshots.coordination.consumer import RequestConsumer
from snapshots.coordination.leader import Leadership
from snapshots.logs import get_logger
from snapshots.refresher import Refresher
from snapshots.scheduler import RefreshScheduler

log = get_logger(__name__)


class Worker:
    """Leader election driving the scheduler, the refresher and the request consumer."""

    def __init__(
        self,
        leadership: Leadership,
        refresher: Refresher,
        scheduler: RefreshScheduler,
        consumer: RequestConsumer,
    ) -> None:
        self._leadership = leadership
        self._refresher = refresher
        self._scheduler = scheduler
        self._consumer = consumer
        self._task: asyncio.Task[None] | None = None
        self.active = False
        self.leader_since: datetime | None = None

    @property
    def instance(self) -> str:
        return self._leadership.instance

    async def start(self) -> None:
        """Try for the lock once now (so a lone process starts refreshing at once), then keep
        checking it (or trying for it) every interval in the background."""
        await self._attempt()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="leader-election")

    async def close(self, grace_seconds: float) -> None:
        """Shut down: no new refreshes, in-flight ones get `grace_seconds`, then hand over."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._scheduler.shutdown()
        await self._refresher.close(grace_seconds)
        await self._consumer.stop()
        self.active = False
        await self._leadership.release()

    async def _run(self) -> None:
        interval = self._leadership.interval
        while True:
            await asyncio.sleep(interval)
            try:
                if self.active:
                    if not await self._leadership.check():
                        await self._stop("lock lost")
                else:
                    await self._attempt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the election loop must outlive any one failure
                log.error("leader.loop_failed", error_type=type(exc).__name__, exc_info=exc)

    async def _attempt(self) -> None:
        won, wait = await self._leadership.try_acquire()
        if not won:
            return
        if wait:  # a recent leader may still be finishing: its next check will stop it
            log.info("leader.waiting_out_previous", seconds=self._leadership.interval)
            await asyncio.sleep(self._leadership.interval)
            if not await self._leadership.check():
                return
        await self._begin()

    async def _begin(self) -> None:
        self._refresher.resume()
        await self._scheduler.start()
        await self._consumer.start()
        self.active = True
        self.leader_since = utcnow()
        log.info("leader.acquired", instance=self.instance)

    async def _stop(self, reason: str) -> None:
        """Stop refreshing first (scheduler, in-flight refreshes), then stop taking requests."""
        self.active = False
        self.leader_since = None
        self._scheduler.shutdown()
        await self._refresher.suspend()
        await self._consumer.stop()
        log.warning("leader.stopped", instance=self.instance, reason=reason)
