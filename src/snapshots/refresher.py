"""One refresh of a (dataset, key): fetch through the provider client, validate, store; single-flight."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from snapshots.budget import Priority, current_priority
from snapshots.clock import utcnow
from snapshots.coordination.fence import Fence, Fenced
from snapshots.errors import (
    RefreshTooSoon,
    SnapshotsError,
    Unavailable,
    UpstreamError,
    UpstreamNotFound,
)
from snapshots.handles import (
    STEPPED_DOWN,
    FutureHandle,
    NegativeCache,
    RefreshListener,
    RefreshResult,
)
from snapshots.logs import get_logger
from snapshots.providers.kind import FetchContext
from snapshots.providers.transport import RequestMeter, current_meter
from snapshots.registry import RegisteredDataset, RegisteredProvider, Registry
from snapshots.store import (
    Coalescer,
    FailureWrite,
    Fencing,
    FetchedPayload,
    KeySource,
    RefreshWrite,
    RunTiming,
    Store,
    SuccessWrite,
    Trigger,
    WriteBatcher,
)
from snapshots.upstreams import Upstreams

log = get_logger(__name__)

RETRY_AFTER_FAILURE_SECONDS = 30.0
"""A failed key is tried again after this long (or its normal interval, if shorter)."""


def _named(instance: str, message: str) -> str:
    """A fetch error as stored and shown, led by the provider instance it came from: the
    kinds' messages name the kind ("pagerduty answered 401"), and with two accounts of one
    kind an operator must see which one failed."""
    if message.startswith((f"{instance}:", f"{instance}.", f"{instance} ")):
        return message
    return f"{instance}: {message}"


@dataclass
class _Flight:
    """A refresh in flight: its run id, the task running it and the future its handles await."""

    run_id: int
    task: asyncio.Task[RefreshResult]
    future: asyncio.Future[RefreshResult]
    what: str

    def handle(self, joined: bool) -> FutureHandle:
        return FutureHandle(self.run_id, joined, self.what, self.future)


class Refresher:
    """Runs refreshes; concurrent requests for one (dataset, key) share one upstream fetch.

    Fetches run on threads because the provider libraries are synchronous; everything else
    (single-flight, storage) stays on the event loop. Each provider has a pool per priority,
    `concurrency` threads each, so a provider whose budget is exhausted holds only its own
    threads, and interactive fetches never queue behind scheduled ones for a thread.
    """

    def __init__(
        self,
        registry: Registry,
        upstreams: Upstreams,
        store: Store,
        *,
        refresh_ahead: float = 0.8,
        clock: Callable[[], datetime] = utcnow,
        fence: Fence | None = None,
        instance: str | None = None,
    ) -> None:
        """`fence`: the leader's epoch, checked by every store write (None: a lone process
        with no election). `instance` is recorded with every run this process stores."""
        self._registry = registry
        self._upstreams = upstreams
        self._store = store
        # Results are stored in batches (one transaction for the refreshes that finish
        # within a few milliseconds); each refresh still waits for its own to commit.
        self._writes = WriteBatcher(store)
        # A burst of refreshes (a whole dataset forced) shares its reads and run ids.
        self._latest = Coalescer(store.latest_many)
        self._run_ids: Coalescer[None, int] = Coalescer(
            lambda calls: store.allocate_run_ids(len(calls))
        )
        self._refresh_ahead = refresh_ahead
        self._clock = clock
        self._fence = fence
        self._instance = instance
        self._executors: dict[tuple[str, Priority], ThreadPoolExecutor] = {}
        self._missing = NegativeCache()
        self._inflight: dict[tuple[str, str], _Flight] = {}
        self._finished: dict[tuple[str, str], tuple[float, _Flight]] = {}
        self._listeners: list[RefreshListener] = []
        self._stretch: dict[str, float] = {}
        self._closing = False
        self._suspended = False

    def known_missing(self, dataset: str, key: str) -> str | None:
        """The upstream's "not found" for this key, while its negative TTL lasts (else None)."""
        return self._missing.get(dataset, key)

    def set_stretch(self, stretch: Mapping[str, float]) -> None:
        """Multiply each provider's refresh intervals (the planner's answer to a short budget)."""
        self._stretch = dict(stretch)

    @property
    def in_flight_count(self) -> int:
        """Refreshes started and not yet stored (waiting for a thread, a token or the upstream)."""
        return len(self._inflight)

    async def running(self, run_id: int) -> tuple[str, str] | None:
        """The (dataset, key) of a refresh still in flight, by its run id."""
        for (dataset, key), started in self._inflight.items():
            if started.run_id == run_id:
                return dataset, key
        return None

    def add_listener(self, listener: RefreshListener) -> None:
        """Call `listener(dataset, key, result)` after every stored refresh, whatever its outcome."""
        self._listeners.append(listener)

    async def start(
        self,
        dataset: str,
        key: str,
        trigger: Trigger,
        source: KeySource = "demand",
        *,
        since: float | None = None,
        seen_run_id: int | None = None,
        accept_shrink: bool = False,
    ) -> FutureHandle:
        """Start a refresh, or join the one of the same key already running; do not wait for it.

        `since` (a `time.monotonic()` value) lets a reader that saw no snapshot at that moment
        reuse a refresh that finished after it looked, instead of fetching again.
        Raises UnknownDataset, DatasetDisabled or MalformedKey before any upstream call, and
        Unavailable once the service is shutting down or this worker stepped down.
        """
        registered = self._registry.enabled_dataset(dataset)
        registered.check_key(key)
        if self._closing:
            raise Unavailable("the service is shutting down; retry on another replica or shortly")
        if self._suspended:
            raise Unavailable("this worker is not the active one; retry shortly")
        current = self._current(dataset, key, since)
        if current is not None:
            return current
        run_id = await self._run_ids(None)
        current = self._current(dataset, key, since)  # another caller may have won the await
        if current is not None:
            return current
        loop = asyncio.get_running_loop()
        future: asyncio.Future[RefreshResult] = loop.create_future()
        task = loop.create_task(self._run(run_id, registered, key, trigger, source, accept_shrink))
        flight = _Flight(run_id, task, future, f"{dataset} {key}")
        self._inflight[(dataset, key)] = flight

        def finished(done: asyncio.Task[RefreshResult]) -> None:
            self._inflight.pop((dataset, key), None)
            self._finished[(dataset, key)] = (time.monotonic(), flight)
            if future.done():
                return
            if done.cancelled():  # stepped down or shut down: nothing was stored
                future.set_result(RefreshResult.interruption(run_id))
            elif (exc := done.exception()) is not None:
                log.error(
                    "refresh.crashed",
                    dataset=dataset,
                    key=key,
                    error_type=type(exc).__name__,
                    exc_info=exc,
                )
                error = f"the refresh of {dataset} {key} failed unexpectedly ({type(exc).__name__})"
                future.set_result(RefreshResult(run_id, "failed", None, error, False, None))
            else:
                future.set_result(done.result())

        task.add_done_callback(finished)
        return flight.handle(joined=False)

    def _current(self, dataset: str, key: str, since: float | None) -> FutureHandle | None:
        """The refresh of this key in flight, or one that finished at or after `since`."""
        running = self._inflight.get((dataset, key))
        if running is not None:
            return running.handle(joined=True)
        done = self._finished.get((dataset, key))
        if since is not None and done is not None and done[0] >= since:
            return done[1].handle(joined=True)
        return None

    async def refresh(
        self,
        dataset: str,
        key: str,
        trigger: Trigger,
        source: KeySource = "demand",
        accept_shrink: bool = False,
    ) -> RefreshResult:
        """Refresh now (or join the running refresh) and wait for it, however long it takes.

        A caller that gives up (cancellation) does not cancel the shared fetch.
        """
        handle = await self.start(dataset, key, trigger, source, accept_shrink=accept_shrink)
        return await asyncio.shield(handle.future)

    async def force(
        self, dataset: str, key: str, accept_shrink: bool = False, trigger: Trigger = "demand"
    ) -> FutureHandle:
        """An asked-for refresh (an operator's, or a read's `max_age`): joins one in flight;
        RefreshTooSoon inside the key's minimum interval.

        The minimum interval keeps refresh loops from spending the budget. Accepting a
        rejected shrink is exempt, since that refresh is what the operator is waiting for.
        The time since the last refresh is the database's, whichever worker stored it.
        """
        registered = self._registry.enabled_dataset(dataset)
        registered.check_key(key)
        current = self._current(dataset, key, None)
        if current is not None:
            return current
        latest = await self._latest((dataset, key))
        minimum = float(registered.settings.min_refresh_interval)
        if latest is not None and latest.refreshed_seconds_ago is not None:
            age = latest.refreshed_seconds_ago
            exempt = accept_shrink and latest.state.last_outcome == "rejected"
            if age < minimum and not exempt:
                version = (
                    f"version {latest.snapshot.version}" if latest.snapshot else "no snapshot yet"
                )
                raise RefreshTooSoon(
                    f"{dataset} {key} was refreshed {age:.0f}s ago ({latest.state.last_outcome}; "
                    f"latest is {version}) by a schedule, a read or an operator; the minimum interval "
                    f"between forced refreshes of a key is {minimum:g}s (min_refresh_interval)",
                    retry_after=max(1, math.ceil(minimum - age)),
                    latest_version=latest.snapshot.version if latest.snapshot else None,
                )
        return await self.start(dataset, key, trigger, accept_shrink=accept_shrink)

    async def _run(
        self,
        run_id: int,
        dataset: RegisteredDataset,
        key: str,
        trigger: Trigger,
        source: KeySource,
        accept_shrink: bool,
    ) -> RefreshResult:
        started = self._clock()
        clock_start = time.monotonic()
        meter = RequestMeter()
        error: str | None = None
        not_found = False
        fetched: FetchedPayload | None = None
        priority = Priority.SCHEDULED if trigger == "schedule" else Priority.INTERACTIVE
        try:
            payload = await asyncio.get_running_loop().run_in_executor(
                self._executor(dataset.provider, priority),
                self._fetch,
                dataset,
                key,
                FetchContext(
                    started, dataset.ttl_seconds, dataset.options, dataset.provider.settings
                ),
                meter,
                priority,
            )
            fetched = FetchedPayload.of(payload)
            self._missing.forget(dataset.name, key)
        except Fenced:  # deposed mid-fetch: the gate refused the next upstream call
            return self._interrupted(run_id, dataset.name, key)
        except UpstreamNotFound as exc:
            error, not_found = _named(dataset.provider.name, exc.message), True
            self._missing.remember(dataset.name, key, error, dataset.negative_ttl_seconds)
        except SnapshotsError as exc:
            error = _named(dataset.provider.name, exc.message)
        except Exception as exc:
            # Library exceptions may quote request details; keep only the type in stored errors.
            error = f"unexpected {type(exc).__name__} while fetching {dataset.name} {key}"
            log.warning(
                "refresh.unexpected_error",
                dataset=dataset.name,
                key=key,
                error_type=type(exc).__name__,
                exc_info=exc,
            )

        finished = self._clock()
        timing = RunTiming(trigger, started, finished, meter.requests, run_id)
        # A key the upstream says does not exist is checked again at its normal cadence (if
        # registered), not at the failure retry: it is no transient fault.
        next_at = finished + timedelta(
            seconds=self._interval(dataset, failed=fetched is None and not not_found)
        )
        try:
            fencing = Fencing(self._fence.check() if self._fence else None, self._instance)
            write: RefreshWrite
            if fetched is not None:
                write = SuccessWrite(
                    dataset.name,
                    key,
                    fetched,
                    timing,
                    next_at,
                    source,
                    dataset.settings.shrink_guard,
                    accept_shrink,
                )
            else:
                write = FailureWrite(dataset.name, key, error or "unknown error", timing, next_at)
            stored = await self._writes.write(write, fencing)
        except Fenced:  # a newer leader took over: what this one fetched is not stored
            return self._interrupted(run_id, dataset.name, key)
        duration = time.monotonic() - clock_start
        result = RefreshResult(
            stored.run_id,
            stored.outcome,
            stored.snapshot_id,
            error,
            not_found,
            # An unregistered key whose first fetch failed gets no timer: only a new read
            # (or a forced refresh) asks the upstream again.
            next_at if stored.registered else None,
            stored.note,
            duration,
        )
        log.info(
            "refresh.finished",
            dataset=dataset.name,
            key=key,
            trigger=trigger,
            outcome=stored.outcome,
            upstream_requests=meter.requests,
            duration_ms=round(duration * 1000, 1),
            error=error or stored.note,
        )
        notify_listeners(self._listeners, dataset.name, key, result)
        return result

    def _interrupted(self, run_id: int, dataset: str, key: str) -> RefreshResult:
        log.warning("refresh.fenced", dataset=dataset, key=key, run_id=run_id)
        return RefreshResult.interruption(run_id, STEPPED_DOWN)

    def _executor(self, provider: RegisteredProvider, priority: Priority) -> ThreadPoolExecutor:
        executor = self._executors.get((provider.name, priority))
        if executor is None:
            executor = ThreadPoolExecutor(
                max_workers=provider.settings.concurrency,
                thread_name_prefix=f"fetch-{provider.name}-{priority.name.lower()}",
            )
            self._executors[(provider.name, priority)] = executor
        return executor

    def _fetch(
        self,
        dataset: RegisteredDataset,
        key: str,
        ctx: FetchContext,
        meter: RequestMeter,
        priority: Priority,
    ) -> Any:
        meter_token = current_meter.set(meter)
        priority_token = current_priority.set(priority)
        try:
            client = self._upstreams.client(dataset.provider.name)
            payload = dataset.definition.fetch(client, key, ctx)
        finally:
            current_priority.reset(priority_token)
            current_meter.reset(meter_token)
        if payload is None:
            raise UpstreamError(f"{dataset.name} {key}: the fetch returned no payload")
        dataset.definition.validate(dataset.name, key, payload)  # a wrong shape is not stored
        return payload

    def _interval(self, dataset: RegisteredDataset, *, failed: bool) -> float:
        """Seconds until the next refresh: ahead of the TTL (stretched when the budget is
        short), jittered so keys registered together spread out."""
        interval = dataset.ttl_seconds * self._refresh_ahead * random.uniform(0.9, 1.0)
        interval *= self._stretch.get(dataset.provider.name, 1.0)
        if failed:
            interval = min(interval, RETRY_AFTER_FAILURE_SECONDS)
        return interval

    async def suspend(self) -> None:
        """Stop refreshing now (the leader lock was lost): cancel in-flight refreshes and take
        no new ones until `resume`. A cancelled refresh has written nothing."""
        self._suspended = True
        tasks = [started.task for started in self._inflight.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            log.warning("refresher.suspended", cancelled=len(tasks))
            await asyncio.gather(*tasks, return_exceptions=True)

    def resume(self) -> None:
        self._suspended = False

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Take no new refreshes; give in-flight ones `grace_seconds` to finish, then cancel them.

        A cancelled refresh has written nothing: its one transaction never started or rolls back.
        """
        self._closing = True
        tasks = [started.task for started in self._inflight.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("refresher.cancelled_on_shutdown", refreshes=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)


def notify_listeners(
    listeners: list[RefreshListener], dataset: str, key: str, result: RefreshResult
) -> None:
    """Call every listener; one that raises is logged and does not stop the others (the
    cache invalidation among them) nor fail the refresh, which is stored already."""
    for listener in listeners:
        try:
            listener(dataset, key, result)
        except Exception as exc:
            log.error(
                "refresh.listener_failed",
                dataset=dataset,
                key=key,
                listener=getattr(listener, "__qualname__", repr(listener)),
                error_type=type(exc).__name__,
                exc_info=exc,
            )
