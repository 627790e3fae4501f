"""Composition per role, in one place: which parts a process builds and in what order they
start and stop.

- The read side (`api`, `serve`): the hot cache and snapshot reader, the path to ask for
  refreshes (this process's refresher while it is the active worker, else the request
  queue), and the flush of its read times.
- The worker side (`worker`, `serve`): upstream budgets, gates and clients, the fence, the
  refresher, the scheduler, the request consumer, leader election and budget publication.
  An `api` process builds none of these.
- Every role: the store, one LISTEN connection, the published budgets view and metrics.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from snapshots.api.cache import SnapshotCache
from snapshots.api.metrics import Metrics
from snapshots.api.reader import SnapshotReader
from snapshots.config import JobsConfig
from snapshots.coordination.changes import ChangeFeed
from snapshots.coordination.consumer import RequestConsumer
from snapshots.coordination.fence import Fence
from snapshots.coordination.leader import Leadership
from snapshots.coordination.listener import NotificationListener
from snapshots.coordination.remote import RemoteRefresher
from snapshots.coordination.routed import RoutedRefresher
from snapshots.coordination.worker import Worker
from snapshots.database import libpq_url, sqlalchemy_url
from snapshots.handles import RefreshService
from snapshots.instance import Role, instance_name
from snapshots.logs import get_logger, register_secret
from snapshots.published import LiveStates, PublishedBudgets, current_states
from snapshots.read_times import ReadFlusher, ReadTracker
from snapshots.refresher import Refresher
from snapshots.registry import Registry
from snapshots.scheduler import RefreshScheduler
from snapshots.store import RequestQueue, Store, create_engine
from snapshots.store.published import ProviderStates
from snapshots.upstreams import Upstreams

log = get_logger(__name__)


@dataclass(frozen=True)
class WorkerSide:
    """What calls upstreams: only while this process holds the leader lock."""

    upstreams: Upstreams
    fence: Fence
    refresher: Refresher
    scheduler: RefreshScheduler
    worker: Worker


@dataclass(frozen=True)
class ReadSide:
    """What serves snapshots: the hot cache and reader, and how refreshes are asked for."""

    refresher: RefreshService
    reads: ReadTracker
    flusher: ReadFlusher
    changes: ChangeFeed
    cache: SnapshotCache
    reader: SnapshotReader


@dataclass(frozen=True)
class Composition:
    """The parts of one process of `role`."""

    role: Role
    instance: str
    config: JobsConfig
    registry: Registry
    store: Store
    budgets: PublishedBudgets
    metrics: Metrics
    listener: NotificationListener
    read: ReadSide | None
    worker: WorkerSide | None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Composition]:
        """Start the parts (listener, worker, read flush) and stop them in reverse order."""
        try:
            await self.listener.start()
            if self.worker is not None:
                await self.worker.worker.start()
            if self.read is not None:
                await self.read.flusher.start()
            yield self
        finally:
            if self.worker is not None:
                await self.worker.worker.close(self.config.shutdown_grace_seconds)
            if self.read is not None:
                await self.read.flusher.stop()  # keep the last interval's reads
            await self.listener.close()
            if self.worker is not None:
                self.worker.upstreams.close()
            await self.store.engine.dispose()
            log.info("service.stopped")


def compose(config: JobsConfig, database_url: str, role: Role = "serve") -> Composition:
    """Build (without starting) the parts a process of `role` needs."""
    if role not in ("serve", "api", "worker"):
        raise ValueError(f"unknown role {role!r}")
    registry = Registry.from_config(config)
    for provider in registry.providers.values():
        if provider.settings.token is not None:  # redacted from every log line, in any role
            register_secret(provider.settings.token.reveal())
    engine = create_engine(
        sqlalchemy_url(database_url),
        idle_in_transaction_seconds=3 * config.leader_check_seconds,
    )
    store = Store(engine)
    listener = NotificationListener(libpq_url(database_url))
    instance = instance_name()
    worker_side = (
        _worker_side(config, database_url, registry, store, listener, instance)
        if role in ("serve", "worker")
        else None
    )
    budgets = PublishedBudgets(ProviderStates(engine), _live(worker_side, instance))
    refresher: RefreshService | None = worker_side.refresher if worker_side else None
    if role in ("serve", "api"):
        # A takeover takes a few lock intervals; an answer may wait that long.
        answer_seconds = max(5.0, 5 * config.leader_check_seconds)
        remote = RemoteRefresher(registry, RequestQueue(engine), listener, answer_seconds)
        refresher = RoutedRefresher(
            worker_side.refresher if worker_side else None,
            worker_side.worker if worker_side else None,
            remote,
        )
    worker = worker_side.worker if worker_side else None
    metrics = Metrics(
        registry,
        store,
        budgets,
        refresher,
        role=role,
        instance=instance,
        worker_active=(lambda: worker.active) if worker is not None else None,
    )
    read_side = (
        _read_side(config, registry, store, listener, refresher, metrics)
        if role in ("serve", "api") and refresher is not None
        else None
    )
    return Composition(
        role, instance, config, registry, store, budgets, metrics, listener, read_side, worker_side
    )


def _live(worker_side: WorkerSide | None, instance: str) -> LiveStates | None:
    """The active worker's own figures, for its own API (fresher than its last publication)."""
    if worker_side is None:
        return None
    side = worker_side

    def live() -> tuple[str, dict[str, dict[str, Any]]] | None:
        if not side.worker.active:
            return None
        return instance, current_states(side.upstreams, side.scheduler.plan)

    return live


def _worker_side(
    config: JobsConfig,
    database_url: str,
    registry: Registry,
    store: Store,
    listener: NotificationListener,
    instance: str,
) -> WorkerSide:
    interval = config.leader_check_seconds
    # Under the 3 intervals after which PostgreSQL ends a silent leader's session (leader.py).
    fence = Fence(lease_seconds=2.5 * interval)
    upstreams = Upstreams(registry, fence)
    refresher = Refresher(
        registry,
        upstreams,
        store,
        refresh_ahead=config.refresh_ahead,
        fence=fence,
        instance=instance,
    )
    scheduler = RefreshScheduler(
        registry,
        store,
        refresher,
        config.refresh_ahead,
        config.maintenance_interval_seconds,
        config.keep_runs_seconds,
    )
    consumer = RequestConsumer(
        RequestQueue(store.engine), store, refresher, listener, poll_seconds=interval
    )
    leadership = Leadership(libpq_url(database_url), instance, interval)
    states = ProviderStates(store.engine)

    async def publish(epoch: int) -> None:
        await states.publish(current_states(upstreams, scheduler.plan), instance, epoch)

    worker = Worker(leadership, refresher, scheduler, consumer, fence, publish)
    return WorkerSide(upstreams, fence, refresher, scheduler, worker)


def _read_side(
    config: JobsConfig,
    registry: Registry,
    store: Store,
    listener: NotificationListener,
    refresher: RefreshService,
    metrics: Metrics,
) -> ReadSide:
    reads = ReadTracker()
    changes = ChangeFeed(listener)
    cache = SnapshotCache(config.api.cache_mib * 1024 * 1024)
    reader = SnapshotReader(config, registry, store, refresher, reads, changes, cache, metrics)
    flusher = ReadFlusher(reads, store, config.maintenance_interval_seconds)
    return ReadSide(refresher, reads, flusher, changes, cache, reader)
