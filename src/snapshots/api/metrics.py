"""Prometheus metrics: reads, refreshes, upstream answers, budgets, snapshot ages, queue depth.

Counters and histograms are updated as things happen; budget, upstream and age figures are
read from the running parts when Prometheus scrapes, so nothing is double-booked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
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
from snapshots.store import Store

log = get_logger(__name__)
AGES_WAIT_SECONDS = 2.0
AGE_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 6 * 3600.0, 86400.0, float("inf"))


class _Live(Collector):
    """Figures read at scrape time: budgets, plans and upstream answers as the active worker
    last published them (so every replica reports the same), queue depth, snapshot ages."""

    def __init__(self, refresher: RefreshService | None) -> None:
        self._refresher = refresher
        self.ages: Mapping[str, list[float]] = {}
        self.views: Mapping[str, ProviderView] = {}

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
        for name, view in sorted(self.views.items()):
            for status, count in view.state.upstream_requests.items():
                upstream.add_metric([name, status], count)
            state = view.state.budget
            plan = view.state.plan
            if state.tokens_left is not None:
                tokens.add_metric([name], state.tokens_left)
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
        self._live = _Live(refresher)
        self.registry.register(self._live)
        self.reads = Counter(
            "snapshots_reads",
            "Snapshot reads by dataset and result",
            ["dataset", "result"],
            registry=self.registry,
        )
        self.fast_path = Counter(
            "snapshots_fast_path_answers",
            "Reads answered in front of Litestar's routing (hot-cache hits)",
            registry=self.registry,
        )
        self.refreshes = Histogram(
            "snapshots_refresh_duration_seconds",
            "Refresh duration by dataset and outcome",
            ["dataset", "outcome"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
        self._read_counters: dict[tuple[str, str], Any] = {}
        if refresher is not None:
            refresher.add_listener(self._refreshed)

    def _refreshed(self, dataset: str, key: str, result: RefreshResult) -> None:
        self.refreshes.labels(dataset, result.outcome).observe(result.duration_seconds)

    def read(self, dataset: str, result: str) -> None:
        """Count a read: `hit`, `miss` (fetched on read), `not_modified` or `stale`."""
        child = self._read_counters.get((dataset, result))
        if child is None:  # labels() costs a lookup and a lock; reads are the hot path
            child = self._read_counters[(dataset, result)] = self.reads.labels(dataset, result)
        child.inc()

    async def render(self) -> bytes:
        """The text format. Snapshot ages and the published budgets are read at the same time,
        each bounded (`AGES_WAIT_SECONDS`; the last figures stay if the store does not answer),
        so a scrape never hangs on the database."""
        ages, views = await asyncio.gather(
            within(self._store.snapshot_ages(), AGES_WAIT_SECONDS),
            self._budgets.views(),
            return_exceptions=True,
        )
        if isinstance(ages, BaseException):
            log.warning("metrics.ages_unavailable", error_type=type(ages).__name__)
        else:
            self._live.ages = ages
        if not isinstance(views, BaseException):
            self._live.views = views
        return generate_latest(self.registry)
