"""APScheduler jobs that refresh every registered key before its TTL runs out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from snapshots.clock import utcnow
from snapshots.logs import get_logger
from snapshots.refresher import RETRY_AFTER_FAILURE_SECONDS, Refresher
from snapshots.registry import Registry
from snapshots.store import DatasetRow, Store

log = get_logger(__name__)


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
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._registry = registry
        self._store = store
        self._refresher = refresher
        self._clock = clock
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        refresher.add_listener(self.schedule)

    async def start(self) -> None:
        """Record datasets and configured keys, then arm a job for every key of an enabled dataset."""
        now = self._clock()
        await self._store.sync_datasets(
            (
                DatasetRow(
                    d.name, d.provider.name, d.ttl_seconds, d.enabled, d.provider.disabled_reason
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
        self._scheduler.start()
        armed = 0
        for state in await self._store.key_states():
            registered = self._registry.datasets.get(state.dataset)
            if registered is None or not registered.enabled:
                continue
            self.schedule(state.dataset, state.key, state.next_refresh_at)
            armed += 1
        log.info("scheduler.started", keys=armed)

    def schedule(self, dataset: str, key: str, when: datetime | None) -> None:
        """Run the key's next scheduled refresh at `when` (now, if unknown or already past)."""
        if not self._scheduler.running:
            return
        run_at = max(when or self._clock(), self._clock())
        self._scheduler.add_job(
            self._refresh,
            trigger=DateTrigger(run_date=run_at, timezone=UTC),
            args=(dataset, key),
            id=job_id(dataset, key),
            replace_existing=True,
        )

    async def _refresh(self, dataset: str, key: str) -> None:
        try:
            await self._refresher.refresh(dataset, key, "schedule", source="config")
        except Exception as exc:  # the job must never die silently; the key is retried later
            log.error(
                "scheduler.refresh_failed", dataset=dataset, key=key, error_type=type(exc).__name__
            )
            self.schedule(
                dataset, key, self._clock() + timedelta(seconds=RETRY_AFTER_FAILURE_SECONDS)
            )

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
