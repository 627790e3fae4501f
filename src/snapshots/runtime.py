"""The parts of one running service, started and stopped together in dependency order."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from snapshots.config import JobsConfig
from snapshots.logs import get_logger, register_secret
from snapshots.reads import ReadTracker
from snapshots.refresher import Refresher
from snapshots.registry import Registry
from snapshots.scheduler import RefreshScheduler
from snapshots.store import Store, create_engine

log = get_logger(__name__)


@dataclass(frozen=True)
class Runtime:
    """What request handlers and jobs need: configuration, registry, store, refresher, scheduler."""

    config: JobsConfig
    registry: Registry
    store: Store
    refresher: Refresher
    scheduler: RefreshScheduler | None
    reads: ReadTracker


@contextlib.asynccontextmanager
async def running(
    config: JobsConfig, database_url: str, *, schedule: bool = True
) -> AsyncIterator[Runtime]:
    """Start the service parts (the scheduler only when `schedule`) and stop them on exit."""
    registry = Registry.from_config(config)
    for provider in registry.providers.values():
        if provider.settings.token is not None:
            register_secret(provider.settings.token.reveal())
    engine = create_engine(database_url)
    store = Store(engine)
    refresher = Refresher(registry, store, refresh_ahead=config.refresh_ahead)
    reads = ReadTracker()
    scheduler = (
        RefreshScheduler(
            registry,
            store,
            refresher,
            reads,
            config.refresh_ahead,
            config.maintenance_interval_seconds,
            config.keep_runs_seconds,
        )
        if schedule
        else None
    )
    try:
        if scheduler is not None:
            await scheduler.start()
        yield Runtime(config, registry, store, refresher, scheduler, reads)
    finally:
        if scheduler is not None:
            scheduler.shutdown()
        await refresher.close(config.shutdown_grace_seconds)
        try:  # keep the last minutes of read times for idle retirement
            await store.touch_reads(reads.drain())
        except Exception as exc:
            log.warning("reads.flush_failed", error_type=type(exc).__name__)
        registry.close()
        await engine.dispose()
        log.info("service.stopped")
