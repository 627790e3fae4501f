"""Prometheus metrics: reads, refreshes, upstream answers, budgets, snapshot ages and key
freshness, queue depth, leadership and readiness.

Counters and histograms are updated as things happen; budget, upstream, age, key and readiness
figures are read from the running parts when Prometheus scrapes, so nothing is double-booked.
The alerting rules and dashboard in `deploy/` are written against these names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, Info, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
)
from prometheus_client.registry import Collector

from snapshots.deadline import within
from snapshots.handles import RefreshResult, RefreshService
from snapshots.logs import get_logger
from snapshots.published import ProviderView, PublishedBudgets
from snapshots.registry import Registry
from snapshots.store import DatasetSummary, Store

log = get_logger(__name__)
AGES_WAIT_SECONDS = 2.0
AGE_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 6 * 3600.0, 86400.0, float("inf"))


class _Live(Collector):
    """Figures read at scrape time: budgets, plans and upstream answers as the active worker
    last published them (so every replica reports the same), queue depth, snapshot ages."""

    def __init__(
        self,
        registry: Registry,
        refresher: RefreshService | None,
        worker_active: Callable[[], bool] | None,
    ) -> None:
        self._registry = registry
        self._refresher = refresher
        self._worker_active = worker_active
        self.ages: Mapping[str, list[float]] = {}
        self.summaries: Mapping[str, DatasetSummary] = {}
        self.views: Mapping[str, ProviderView] = {}
        self.ready = False

    def collect(self) -> Iterable[Any]:
        upstream = CounterMetricFamily(
            "snapshots_upstream_requests",
            "Upstream HTTP answers by provider and status",
            labels=["provider", "status"],
        )
        tokens = GaugeMetricFamily(
            "snapshots_budget_tokens_left", "Tokens left in the current period", labels=["provider"]
        )
        used = GaugeMetricFamily(
            "snapshots_budget_used_in_period",
            "Tokens spent in the current period",
            labels=["provider"],
        )
        waiting = GaugeMetricFamily(
            "snapshots_budget_waiting",
            "Requests waiting for a token",
            labels=["provider", "priority"],
        )
        wait = CounterMetricFamily(
            "snapshots_budget_wait_seconds",
            "Time spent waiting for tokens",
            labels=["provider", "priority"],
        )
        paused = GaugeMetricFamily(
            "snapshots_budget_paused_seconds",
            "Seconds left of an upstream-ordered pause",
            labels=["provider"],
        )
        stretch = GaugeMetricFamily(
            "snapshots_budget_stretch",
            "Factor refresh intervals are stretched by",
            labels=["provider"],
        )
        short = GaugeMetricFamily(
            "snapshots_budget_shortfall_per_hour",
            "Requests per hour the budget cannot carry",
            labels=["provider"],
        )
        limit = GaugeMetricFamily(
            "snapshots_budget_limit", "Tokens per period (the budget's size)", labels=["provider"]
        )
        for name, view in sorted(self.views.items()):
            for status, count in view.state.upstream_requests.items():
                upstream.add_metric([name, status], count)
            state = view.state.budget
            plan = view.state.plan
            if state.tokens_left is not None:
                tokens.add_metric([name], state.tokens_left)
            if state.limit is not None:
                limit.add_metric([name], state.limit)
            used.add_metric([name], state.used_in_period)
            paused.add_metric([name], state.paused_for_seconds)
            for priority in ("interactive", "scheduled"):
                waiting.add_metric([name, priority], state.waiting.get(priority, 0))
                wait.add_metric([name, priority], state.wait_seconds.get(priority, 0.0))
            if plan is not None:
                stretch.add_metric([name], plan.stretch)
                short.add_metric([name], plan.shortfall_per_hour)
        queue = GaugeMetricFamily(
            "snapshots_refresh_queue_depth", "Refreshes started and not yet stored"
        )
        queue.add_metric([], self._refresher.in_flight_count if self._refresher else 0)
        age_max = GaugeMetricFamily(
            "snapshots_snapshot_age_max_seconds", "Oldest latest snapshot", labels=["dataset"]
        )
        age_hist = GaugeHistogramMetricFamily(
            "snapshots_snapshot_age_seconds", "Ages of latest snapshots", labels=["dataset"]
        )
        for dataset, ages in sorted(self.ages.items()):
            age_max.add_metric([dataset], max(ages, default=0.0))
            buckets = [(_bound(b), float(sum(1 for a in ages if a <= b))) for b in AGE_BUCKETS]
            age_hist.add_metric([dataset], buckets, gsum_value=sum(ages))
        yield from (
            upstream,
            tokens,
            limit,
            used,
            waiting,
            wait,
            paused,
            stretch,
            short,
            queue,
            age_max,
            age_hist,
        )
        yield from self._datasets()
        ready = GaugeMetricFamily(
            "snapshots_ready",
            "1 when the database answered this scrape within 2 s (what /readyz checks), else 0",
        )
        ready.add_metric([], 1.0 if self.ready else 0.0)
        yield ready
        if self._worker_active is not None:  # only processes that run a worker say this
            active = GaugeMetricFamily(
                "snapshots_worker_active",
                "1 while this worker holds the leader lock (the one calling upstreams), else 0",
            )
            active.add_metric([], 1.0 if self._worker_active() else 0.0)
            yield active

    def _datasets(self) -> Iterable[Any]:
        """Per registered dataset: TTL, enabled, and how its keys stand (from the store), so a
        key never fetched counts as stale, which snapshot ages cannot show."""
        ttl = GaugeMetricFamily(
            "snapshots_dataset_ttl_seconds", "The dataset's TTL", labels=["dataset"]
        )
        enabled = GaugeMetricFamily(
            "snapshots_dataset_enabled",
            "1 when the dataset can fetch (its provider has what it needs), else 0",
            labels=["dataset"],
        )
        keys = GaugeMetricFamily(
            "snapshots_dataset_keys", "Registered keys of the dataset", labels=["dataset"]
        )
        stale = GaugeMetricFamily(
            "snapshots_dataset_stale_keys",
            "Keys whose latest snapshot is older than the TTL, or that were never fetched",
            labels=["dataset"],
        )
        failing = GaugeMetricFamily(
            "snapshots_dataset_failing_keys",
            "Keys whose last refresh failed or was rejected",
            labels=["dataset"],
        )
        for name, dataset in sorted(self._registry.datasets.items()):
            summary = self.summaries.get(name, DatasetSummary(0, 0, 0, 0))
            ttl.add_metric([name], dataset.ttl_seconds)
            enabled.add_metric([name], 1.0 if dataset.enabled else 0.0)
            keys.add_metric([name], summary.keys)
            stale.add_metric([name], summary.stale)
            failing.add_metric([name], summary.failing)
        yield from (ttl, enabled, keys, stale, failing)


class _ReadCounts(Collector):
    """Reads and fast-path answers: counted with plain integer additions by the event loop
    that serves them (a prometheus_client counter takes a lock per increment, on the hot path)
    and exported as counters when Prometheus scrapes."""

    def __init__(self) -> None:
        self.reads: dict[tuple[str, str], int] = {}
        self.fast_path = 0

    def collect(self) -> Iterable[Any]:
        reads = CounterMetricFamily(
            "snapshots_reads", "Snapshot reads by dataset and result", labels=["dataset", "result"]
        )
        for (dataset, result), count in sorted(dict(self.reads).items()):
            reads.add_metric([dataset, result], count)
        fast = CounterMetricFamily(
            "snapshots_fast_path_answers",
            "Reads answered in front of Litestar's routing (hot-cache hits, remembered mirror "
            "answers)",
        )
        fast.add_metric([], self.fast_path)
        yield from (reads, fast)


def _bound(bucket: float) -> str:
    return "+Inf" if bucket == float("inf") else f"{bucket:g}"


class Metrics:
    """The metrics of one running service (its own registry, so tests can run several)."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        budgets: PublishedBudgets,
        refresher: RefreshService | None,
        *,
        role: str = "",
        instance: str = "",
        worker_active: Callable[[], bool] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        # Which process answered the scrape: behind one port (`snapshots api --workers N`, or
        # replicas behind a Service) each process counts only its own reads.
        Info(
            "snapshots_instance",
            "The process that answered: its role and instance name",
            registry=self.registry,
        ).info({"role": role, "instance": instance})
        self._store = store
        self._budgets = budgets
        self._live = _Live(registry, refresher, worker_active)
        self.registry.register(self._live)
        self._reads = _ReadCounts()
        self.registry.register(self._reads)
        self.refreshes = Histogram(
            "snapshots_refresh_duration_seconds",
            "Refresh duration by dataset and outcome",
            ["dataset", "outcome"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
        if refresher is not None:
            refresher.add_listener(self._refreshed)

    def _refreshed(self, dataset: str, key: str, result: RefreshResult) -> None:
        self.refreshes.labels(dataset, result.outcome).observe(result.duration_seconds)

    def read(self, dataset: str, result: str) -> None:
        """Count a read: `hit`, `miss` (fetched on read), `not_modified` or `stale`. Called on
        the event loop that serves the API (one thread), so a plain addition, no lock."""
        counts = self._reads.reads
        counts[dataset, result] = counts.get((dataset, result), 0) + 1

    def fast_path_answered(self) -> None:
        """Count an answer of the fast path (on the API's event loop, like `read`)."""
        self._reads.fast_path += 1

    async def render(self) -> bytes:
        """The text format. Readiness, snapshot ages, key summaries and the published budgets
        are read at the same time, each bounded (`AGES_WAIT_SECONDS`; the last figures stay if
        the store does not answer), so a scrape never hangs on the database."""
        ping, ages, summaries, views = await asyncio.gather(
            within(self._store.ping(), AGES_WAIT_SECONDS),
            within(self._store.snapshot_ages(), AGES_WAIT_SECONDS),
            within(self._store.dataset_summaries(), AGES_WAIT_SECONDS),
            self._budgets.views(),
            return_exceptions=True,
        )
        self._live.ready = not isinstance(ping, BaseException)
        if isinstance(ages, BaseException):
            log.warning("metrics.ages_unavailable", error_type=type(ages).__name__)
        else:
            self._live.ages = ages
        if not isinstance(summaries, BaseException):
            self._live.summaries = summaries
        if not isinstance(views, BaseException):
            self._live.views = views
        return generate_latest(self.registry)
