"""APScheduler jobs that refresh every registered key before its TTL runs out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from snapshots.clock import utcnow
from snapshots.handles import RefreshResult
from snapshots.logs import get_logger
from snapshots.planner import ProviderPlan, make_plan
from snapshots.refresher import RETRY_AFTER_FAILURE_SECONDS, Refresher
from snapshots.registry import Registry
from snapshots.store import DatasetRow, Store

log = get_logger(__name__)

PRUNE_BATCHES = 10
"""Batches of retention deletes per maintenance run and dataset."""


def job_id(dataset: str, key: str) -> str:
    return f"refresh:{dataset}:{key}"


class RefreshScheduler:
    """One date job per registered key, re-armed after every refresh at its persisted due time.

    Due times live in Postgres (`dataset_keys.next_refresh_at`), so a restart refreshes overdue
    keys first and leaves fresh ones alone.
    """

    def __init__(
        self,
        registry: Registry,
        store: Store,
        refresher: Refresher,
        refresh_ahead: float = 0.8,
        maintenance_seconds: float = 30.0,
        keep_runs_seconds: float = 30 * 86400.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`maintenance_seconds`: how often idle keys are retired, old rows pruned and the
        budget plan recomputed (read times are the read side's to write)."""
        self._registry = registry
        self._store = store
        self._refresher = refresher
        self._refresh_ahead = refresh_ahead
        self._maintenance_seconds = maintenance_seconds
        self._keep_runs_seconds = keep_runs_seconds
        self._clock = clock
        self.plan: dict[str, ProviderPlan] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._scheduler = self._new_scheduler()
        refresher.add_listener(self._rearm)

    @staticmethod
    def _new_scheduler() -> AsyncIOScheduler:
        return AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    async def start(self) -> None:
        """Record datasets and configured keys, then arm a job for every key of an enabled dataset.

        May be called again after `shutdown` (a worker that becomes the leader again)."""
        if self._scheduler.running:
            return
        self._scheduler = self._new_scheduler()
        self._slots = {}  # semaphores belong to the running event loop
        now = self._clock()
        await self._store.sync_datasets(
            (
                DatasetRow(
                    d.name,
                    d.provider.name,
                    d.ttl_seconds,
                    d.enabled,
                    d.provider.disabled_reason,
                    kind=d.provider.kind.name,
                    definition=d.definition.name,
                )
                for d in self._registry.datasets.values()
            ),
            now,
        )
        for dataset in self._registry.datasets.values():
            await self._store.register_keys(dataset.name, dataset.keys, "config", now)
            if not dataset.enabled:
                log.warning(
                    "dataset.disabled",
                    dataset=dataset.name,
                    reason=dataset.provider.disabled_reason,
                )
        await self.maintain()
        self._scheduler.start()
        self._scheduler.add_job(
            self.maintain,
            trigger=IntervalTrigger(seconds=self._maintenance_seconds, timezone=UTC),
            id="maintenance",
            replace_existing=True,
        )
        armed = 0
        for state in await self._store.key_states():
            registered = self._registry.datasets.get(state.dataset)
            if registered is None or not registered.enabled:
                continue
            self.schedule(state.dataset, state.key, state.next_refresh_at)
            armed += 1
        log.info("scheduler.started", keys=armed)

    def schedule(self, dataset: str, key: str, when: datetime | None) -> None:
        """Run the key's next scheduled refresh at `when` (now, if unknown).

        A due time in the past is kept as it is: APScheduler runs missed jobs in due-time
        order, so after a restart the most overdue keys are refreshed first.
        """
        if not self._scheduler.running:
            return
        run_at = when or self._clock()
        self._scheduler.add_job(
            self._refresh,
            trigger=DateTrigger(run_date=run_at, timezone=UTC),
            args=(dataset, key),
            id=job_id(dataset, key),
            replace_existing=True,
        )

    def _rearm(self, dataset: str, key: str, result: RefreshResult) -> None:
        """After a stored refresh: arm the key's next refresh, or drop its job when it has no
        next refresh (not registered: a failed first fetch, or a key retired meanwhile)."""
        if result.next_refresh_at is None:
            self.unschedule(dataset, key)
        else:
            self.schedule(dataset, key, result.next_refresh_at)

    def _admission(self, dataset: str) -> asyncio.Semaphore:
        """Scheduled refreshes of one provider in flight at once: twice its fetch threads.

        Without it, thousands of keys due together (a first start) would all queue for a
        database connection and time out, some after spending their upstream request.
        """
        provider = self._registry.dataset(dataset).provider
        slots = self._slots.get(provider.name)
        if slots is None:
            slots = self._slots[provider.name] = asyncio.Semaphore(
                2 * provider.settings.concurrency
            )
        return slots

    async def _refresh(self, dataset: str, key: str) -> None:
        try:
            async with self._admission(dataset):
                # "demand": should the key have been retired meanwhile, a scheduled refresh
                # must not bring it back as a configured key that is never retired.
                await self._refresher.refresh(dataset, key, "schedule", source="demand")
        except Exception as exc:  # the job must never die silently; the key is retried later
            log.error(
                "scheduler.refresh_failed",
                dataset=dataset,
                key=key,
                error_type=type(exc).__name__,
                exc_info=exc,
            )
            self.schedule(
                dataset, key, self._clock() + timedelta(seconds=RETRY_AFTER_FAILURE_SECONDS)
            )

    def unschedule(self, dataset: str, key: str) -> None:
        job = self._scheduler.get_job(job_id(dataset, key))
        if job is not None:
            job.remove()

    async def maintain(self) -> None:
        """Housekeeping: retire idle on-demand keys, prune, re-plan.

        Each job runs on its own: one that fails (logged with its traceback) does not keep
        the others from running; the next maintenance run tries it again.
        """
        now = self._clock()
        for name, job in (
            ("retire", self._retire_idle),
            ("prune", self._prune),
            ("plan", self._replan),
        ):
            try:
                await job(now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error(
                    "scheduler.maintenance_failed",
                    job=name,
                    error_type=type(exc).__name__,
                    exc_info=exc,
                )

    async def _retire_idle(self, now: datetime) -> None:
        for dataset in self._registry.datasets.values():
            unread_since = now - timedelta(seconds=float(dataset.settings.idle_retire))
            for key in await self._store.retire_idle_keys(dataset.name, unread_since):
                self.unschedule(dataset.name, key)
                log.info("key.retired", dataset=dataset.name, key=key, reason="idle")

    async def _replan(self, now: datetime) -> None:
        since = now - timedelta(hours=1)
        self.plan = make_plan(
            self._registry,
            self._refresh_ahead,
            await self._store.key_counts(),
            await self._store.requests_per_refresh(since),
        )
        self._refresher.set_stretch({p.provider: p.stretch for p in self.plan.values()})
        for plan in self.plan.values():
            if plan.stretch > 1:
                log.warning(
                    "budget.short",
                    provider=plan.provider,
                    demand_per_hour=round(plan.demand_per_hour),
                    budget_per_hour=round(plan.budget_per_hour),
                    stretch=round(plan.stretch, 2),
                )

    async def _prune(self, now: datetime) -> None:
        """Retention, a few small batches per maintenance run (the rest waits for the next)."""
        for dataset in self._registry.datasets.values():
            cutoff = now - timedelta(seconds=float(dataset.settings.keep))
            for _ in range(PRUNE_BATCHES):
                if await self._store.prune_versions(dataset.name, cutoff) == 0:
                    break
        for _ in range(PRUNE_BATCHES):
            if await self._store.prune_runs(now - timedelta(seconds=self._keep_runs_seconds)) == 0:
                break

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
