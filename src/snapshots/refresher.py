"""One refresh of a (dataset, key): fetch through the provider client, validate, store; single-flight."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from snapshots.budget import Priority, current_priority
from snapshots.clock import utcnow
from snapshots.errors import SnapshotsError, Unavailable, UpstreamError, UpstreamNotFound
from snapshots.logs import get_logger
from snapshots.providers.base import FetchContext
from snapshots.providers.transport import RequestMeter, current_meter
from snapshots.registry import RegisteredDataset, RegisteredProvider, Registry
from snapshots.store import FetchedPayload, KeySource, Outcome, RunTiming, Store, Trigger

log = get_logger(__name__)

RETRY_AFTER_FAILURE_SECONDS = 30.0
"""A failed key is tried again after this long (or its normal interval, if shorter)."""


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did: its run id, outcome, the latest snapshot, and the error if it failed."""

    run_id: int
    outcome: Outcome
    snapshot_id: int | None
    error: str | None
    not_found: bool
    next_refresh_at: datetime | None


RefreshListener = Callable[[str, str, datetime | None], None]


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
        store: Store,
        *,
        refresh_ahead: float = 0.8,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._registry = registry
        self._store = store
        self._refresh_ahead = refresh_ahead
        self._clock = clock
        self._executors: dict[tuple[str, Priority], ThreadPoolExecutor] = {}
        self._missing: dict[tuple[str, str], tuple[float, str]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Task[RefreshResult]] = {}
        self._listeners: list[RefreshListener] = []

    def known_missing(self, dataset: str, key: str) -> str | None:
        """The upstream's "not found" for this key, while its negative TTL lasts (else None)."""
        entry = self._missing.get((dataset, key))
        if entry is None:
            return None
        expires, message = entry
        if time.monotonic() >= expires:
            self._missing.pop((dataset, key), None)
            return None
        return message

    def _executor(self, provider: RegisteredProvider, priority: Priority) -> ThreadPoolExecutor:
        executor = self._executors.get((provider.name, priority))
        if executor is None:
            executor = ThreadPoolExecutor(
                max_workers=provider.settings.concurrency,
                thread_name_prefix=f"fetch-{provider.name}-{priority.name.lower()}",
            )
            self._executors[(provider.name, priority)] = executor
        return executor

    def add_listener(self, listener: RefreshListener) -> None:
        """Call `listener(dataset, key, next_refresh_at)` after every stored refresh."""
        self._listeners.append(listener)

    async def refresh(
        self, dataset: str, key: str, trigger: Trigger, source: KeySource = "demand"
    ) -> RefreshResult:
        """Refresh now, or join the refresh of the same key already running.

        Raises UnknownDataset, DatasetDisabled or MalformedKey before any upstream call.
        A caller that gives up (cancellation, timeout) does not cancel the shared fetch.
        """
        registered = self._registry.enabled_dataset(dataset)
        registered.check_key(key)
        task = self._inflight.get((dataset, key))
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._run(registered, key, trigger, source)
            )
            self._inflight[(dataset, key)] = task
            task.add_done_callback(lambda _: self._inflight.pop((dataset, key), None))
        return await asyncio.shield(task)

    async def refresh_within(
        self,
        dataset: str,
        key: str,
        trigger: Trigger,
        wait_seconds: float,
        source: KeySource = "demand",
    ) -> RefreshResult:
        """Like `refresh`, but Unavailable (with Retry-After) if it takes longer than `wait_seconds`."""
        try:
            return await asyncio.wait_for(self.refresh(dataset, key, trigger, source), wait_seconds)
        except TimeoutError:
            raise Unavailable(
                f"{dataset} {key} is being fetched and took longer than {wait_seconds:g}s; retry shortly",
                retry_after=max(1, int(wait_seconds / 2)),
            ) from None

    async def _run(
        self, dataset: RegisteredDataset, key: str, trigger: Trigger, source: KeySource
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
                FetchContext(started, dataset.ttl_seconds, dataset.options),
                meter,
                priority,
            )
            fetched = FetchedPayload.of(payload)
            self._missing.pop((dataset.name, key), None)
        except UpstreamNotFound as exc:
            error, not_found = exc.message, True
            expires = time.monotonic() + dataset.negative_ttl_seconds
            self._missing[(dataset.name, key)] = (expires, exc.message)
        except SnapshotsError as exc:
            error = exc.message
        except Exception as exc:
            # Library exceptions may quote request details; keep only the type in stored errors.
            error = f"unexpected {type(exc).__name__} while fetching {dataset.name} {key}"
            log.warning(
                "refresh.unexpected_error",
                dataset=dataset.name,
                key=key,
                error_type=type(exc).__name__,
            )

        finished = self._clock()
        timing = RunTiming(trigger, started, finished, meter.requests)
        next_at = finished + timedelta(seconds=self._interval(dataset, failed=fetched is None))
        if fetched is not None:
            stored = await self._store.record_success(
                dataset.name, key, fetched, timing, next_at, source
            )
        else:
            stored = await self._store.record_failure(
                dataset.name, key, error or "unknown error", timing, next_at
            )
        log.info(
            "refresh.finished",
            dataset=dataset.name,
            key=key,
            trigger=trigger,
            outcome=stored.outcome,
            upstream_requests=meter.requests,
            duration_ms=round((time.monotonic() - clock_start) * 1000, 1),
            error=error,
        )
        for listener in self._listeners:
            listener(dataset.name, key, next_at)
        return RefreshResult(
            stored.run_id, stored.outcome, stored.snapshot_id, error, not_found, next_at
        )

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
            client = self._registry.client(dataset.provider.name)
            payload = dataset.definition.fetch(client, key, ctx)
        finally:
            current_priority.reset(priority_token)
            current_meter.reset(meter_token)
        if payload is None:
            raise UpstreamError(f"{dataset.name} {key}: the fetch returned no payload")
        return payload

    def _interval(self, dataset: RegisteredDataset, *, failed: bool) -> float:
        """Seconds until the next refresh: ahead of the TTL, jittered so keys spread out."""
        interval = dataset.ttl_seconds * self._refresh_ahead * random.uniform(0.9, 1.0)
        if failed:
            interval = min(interval, RETRY_AFTER_FAILURE_SECONDS)
        return interval

    async def close(self) -> None:
        """Let in-flight refreshes finish, then stop the fetch threads."""
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        for executor in self._executors.values():
            executor.shutdown(wait=True, cancel_futures=True)
