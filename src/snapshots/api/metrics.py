"""Prometheus metrics: reads, refreshes, upstream answers, budgets, snapshot ages, queue depth.

Counters and histograms are updated as things happen; budget, upstream and age figures are
read from the running parts when Prometheus scrapes, so nothing is double-booked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
)
from prometheus_client.registry import Collector

from snapshots.deadline import within
from snapshots.logs import get_logger
from snapshots.refresher import RefreshResult
from snapshots.runtime import Runtime
from snapshots.store.errors import STORE_UNANSWERED

log = get_logger(__name__)
AGES_WAIT_SECONDS = 2.0
AGE_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 6 * 3600.0, 86400.0, float("inf"))


class _Live(Collector):
    """Figures read from the runtime at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.ages: Mapping[str, list[float]] = {}

    def collect(self) -> Iterable[Any]:
        runtime = self._runtime
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
        plans = runtime.scheduler.plan if runtime.scheduler is not None else {}
        for name, provider in sorted(runtime.registry.providers.items()):
            for status, count in provider.gate.answers().items():
                upstream.add_metric([name, status], count)
            state = provider.budget.state()
            if state.tokens_left is not None:
                tokens.add_metric([name], state.tokens_left)
            used.add_metric([name], state.used_in_period)
            paused.add_metric([name], state.paused_for_seconds)
            for priority in ("interactive", "scheduled"):
                waiting.add_metric([name, priority], state.waiting.get(priority, 0))
                wait.add_metric([name, priority], state.wait_seconds.get(priority, 0.0))
            if name in plans:
                stretch.add_metric([name], plans[name].stretch)
                short.add_metric([name], plans[name].shortfall_per_hour)
        queue = GaugeMetricFamily(
            "snapshots_refresh_queue_depth", "Refreshes started and not yet stored"
        )
        queue.add_metric([], runtime.refresher.in_flight_count)
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

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry()
        self._runtime = runtime
        self._live = _Live(runtime)
        self.registry.register(self._live)
        self.reads = Counter(
            "snapshots_reads",
            "Snapshot reads by dataset and result",
            ["dataset", "result"],
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
        runtime.refresher.add_listener(self._refreshed)

    def _refreshed(self, dataset: str, key: str, result: RefreshResult) -> None:
        self.refreshes.labels(dataset, result.outcome).observe(result.duration_seconds)

    def read(self, dataset: str, result: str) -> None:
        """Count a read: `hit`, `miss` (fetched on read), `not_modified` or `stale`."""
        child = self._read_counters.get((dataset, result))
        if child is None:  # labels() costs a lookup and a lock; reads are the hot path
            child = self._read_counters[(dataset, result)] = self.reads.labels(dataset, result)
        child.inc()

    async def render(self) -> bytes:
        """The text format; snapshot ages are re-read from the store when it answers within
        `AGES_WAIT_SECONDS` (else the last ones stay, so a scrape never hangs on it)."""
        try:
            self._live.ages = await within(self._runtime.store.snapshot_ages(), AGES_WAIT_SECONDS)
        except STORE_UNANSWERED as exc:
            log.warning("metrics.ages_unavailable", error_type=type(exc).__name__)
        return generate_latest(self.registry)
