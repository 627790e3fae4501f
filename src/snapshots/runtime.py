"""The parts of one running process, started and stopped together in dependency order.

A process has a role: `serve` (the read API and a worker), `api` (the read API only: refreshes
are asked of the active worker) or `worker` (scheduler and refresher, active only while it
holds the leader lock). Every role listens for changes and requests on PostgreSQL.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from snapshots.config import JobsConfig
from snapshots.coordination.changes import ChangeFeed
from snapshots.coordination.consumer import RequestConsumer
from snapshots.coordination.leader import Leadership
from snapshots.coordination.listener import NotificationListener
from snapshots.coordination.remote import RemoteRefresher
from snapshots.coordination.routed import RoutedRefresher
from snapshots.coordination.worker import Worker
from snapshots.database import libpq_url
from snapshots.instance import Role, instance_name
from snapshots.logs import get_logger, register_secret
from snapshots.reads import ReadTracker
from snapshots.refresher import Refresher, RefreshService
from snapshots.registry import Registry
from snapshots.scheduler import RefreshScheduler
from snapshots.store import RequestQueue, Store, create_engine

log = get_logger(__name__)


@dataclass(frozen=True)
class Runtime:
    """What request handlers and jobs need: configuration, registry, store, refresher, scheduler."""

    config: JobsConfig
    registry: Registry
    store: Store
    refresher: RefreshService
    scheduler: RefreshScheduler | None
    reads: ReadTracker
    changes: ChangeFeed
    worker: Worker | None = None
    role: Role = "serve"


@contextlib.asynccontextmanager
async def running(
    config: JobsConfig, database_url: str, *, role: Role = "serve"
) -> AsyncIterator[Runtime]:
    """Start the parts of `role` and stop them on exit."""
    registry = Registry.from_config(config)
    for provider in registry.providers.values():
        if provider.settings.token is not None:
            register_secret(provider.settings.token.reveal())
    engine = create_engine(database_url)
    store = Store(engine)
    queue = RequestQueue(engine)
    listener = NotificationListener(libpq_url(database_url))
    reads = ReadTracker()
    interval = config.leader_check_seconds
    local: Refresher | None = None
    scheduler: RefreshScheduler | None = None
    worker: Worker | None = None
    if role in ("serve", "worker"):
        local = Refresher(registry, store, refresh_ahead=config.refresh_ahead)
        scheduler = RefreshScheduler(
            registry,
            store,
            local,
            reads,
            config.refresh_ahead,
            config.maintenance_interval_seconds,
            config.keep_runs_seconds,
        )
        consumer = RequestConsumer(queue, store, local, listener, poll_seconds=interval)
        leadership = Leadership(libpq_url(database_url), instance_name(), interval)
        worker = Worker(leadership, local, scheduler, consumer)
    # A takeover takes up to two lock intervals; an answer may wait that long, and read_wait.
    remote = RemoteRefresher(registry, queue, listener, max(5.0, 3 * interval))
    refresher = RoutedRefresher(local, worker, remote)
    try:
        await listener.start()
        if worker is not None:
            await worker.start()
        yield Runtime(
            config, registry, store, refresher, scheduler, reads, ChangeFeed(listener), worker, role
        )
    finally:
        if worker is not None:
            await worker.close(config.shutdown_grace_seconds)
        await listener.close()
        try:  # keep the last minutes of read times for idle retirement
            await store.touch_reads(reads.drain())
        except Exception as exc:
            log.warning("reads.flush_failed", error_type=type(exc).__name__, exc_info=exc)
        registry.close()
        await engine.dispose()
        log.info("service.stopped")
