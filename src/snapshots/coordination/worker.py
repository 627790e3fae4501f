"""The active-worker role: stand by until this process holds the leader lock, then run the
scheduler and answer refresh requests; stop both the moment a check of the lock fails.

While active, each successful check renews the fence's lease and publishes the budgets and
the plan for every replica to show (`PublishedBudgets` reads them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from snapshots.clock import utcnow
from snapshots.coordination.consumer import RequestConsumer
from snapshots.coordination.fence import Fence
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
        fence: Fence,
        publish: Callable[[int], Awaitable[None]],
    ) -> None:
        """`publish(epoch)` writes this worker's budgets and plan for the replicas."""
        self._leadership = leadership
        self._refresher = refresher
        self._scheduler = scheduler
        self._consumer = consumer
        self._fence = fence
        self._publish = publish
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
        self._fence.revoke()
        await self._leadership.release()

    async def _run(self) -> None:
        interval = self._leadership.interval
        while True:
            await asyncio.sleep(interval)
            try:
                if self.active:
                    checked_at = time.monotonic()
                    if not await self._leadership.check():
                        await self._stop("lock lost")
                        continue
                    self._fence.renew(checked_at)
                    await self._published()
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
        epoch = self._leadership.epoch
        assert epoch is not None
        self._fence.grant(epoch)
        self._refresher.resume()
        await self._consumer.start()  # first: it closes what a previous leader left open
        await self._scheduler.start()
        self.active = True
        self.leader_since = utcnow()
        log.info("leader.acquired", instance=self.instance, epoch=epoch)
        await self._published()

    async def _published(self) -> None:
        """Publish the budgets; a failure is logged (the next check tries again)."""
        epoch = self._fence.epoch
        if epoch is None:
            return
        try:
            await self._publish(epoch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("budgets.publish_failed", error_type=type(exc).__name__, exc_info=exc)

    async def _stop(self, reason: str) -> None:
        """Fence first (no upstream call, no store from here on), then stop refreshing (the
        handles of in-flight refreshes finish as stepped down) and answer what is open."""
        self._fence.revoke()
        self.active = False
        self.leader_since = None
        self._scheduler.shutdown()
        await self._refresher.suspend()
        await self._consumer.stop()
        log.warning("leader.stopped", instance=self.instance, reason=reason)
