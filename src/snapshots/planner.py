"""Budget-aware planning: the upstream requests registered work needs, against each budget.

When a provider's datasets need more requests per hour than its budget gives, every refresh
interval of that provider is stretched by the same factor (fair: each key keeps the same
share), so the scheduler never queues more work than the budget can carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from snapshots.registry import Registry

HEADROOM = 0.9
"""Plan to use at most 90% of a budget, leaving room for cold misses and forced refreshes."""


@dataclass(frozen=True)
class DatasetDemand:
    """What one dataset asks of its provider."""

    dataset: str
    keys: int
    interval_seconds: float  # between refreshes of one key, before any stretch
    requests_per_refresh: float
    requests_per_hour: float


@dataclass(frozen=True)
class ProviderPlan:
    """A provider's demand against its budget, and the stretch applied to its intervals."""

    provider: str
    budget_per_hour: float
    demand_per_hour: float
    stretch: float  # >= 1; every interval of this provider is multiplied by it
    datasets: tuple[DatasetDemand, ...]

    @property
    def utilisation(self) -> float:
        """Planned demand as a fraction of the whole budget (before stretching)."""
        return self.demand_per_hour / self.budget_per_hour if self.budget_per_hour else 0.0

    @property
    def shortfall_per_hour(self) -> float:
        """Requests per hour the budget (less headroom) cannot carry; 0 when it can."""
        return max(0.0, self.demand_per_hour - self.budget_per_hour * HEADROOM)


def make_plan(
    registry: Registry,
    refresh_ahead: float,
    key_counts: Mapping[str, int],
    requests_per_refresh: Mapping[str, float],
    include_disabled: bool = False,
) -> dict[str, ProviderPlan]:
    """A plan per provider from registered key counts and observed requests per refresh.

    Datasets with no observation yet count one request per refresh. Disabled datasets
    (no token) count only with `include_disabled`, as `snapshots plan` does before tokens
    are in place.
    """
    plans: dict[str, ProviderPlan] = {}
    for name, provider in sorted(registry.providers.items()):
        demands = []
        for dataset in sorted(registry.datasets.values(), key=lambda d: d.name):
            if dataset.provider is not provider or not (dataset.enabled or include_disabled):
                continue
            keys = key_counts.get(dataset.name, 0)
            interval = dataset.ttl_seconds * refresh_ahead
            per_refresh = max(1.0, requests_per_refresh.get(dataset.name, 1.0))
            demands.append(
                DatasetDemand(
                    dataset.name, keys, interval, per_refresh, keys * per_refresh * 3600 / interval
                )
            )
        limit = provider.budget_limit
        budget_per_hour = limit.requests * 3600 / limit.period_seconds if limit else float("inf")
        demand = sum(d.requests_per_hour for d in demands)
        stretch = max(1.0, demand / (budget_per_hour * HEADROOM)) if limit else 1.0
        plans[name] = ProviderPlan(name, budget_per_hour, demand, stretch, tuple(demands))
    return plans


def render(plans: Mapping[str, ProviderPlan]) -> str:
    """The plan as a text table, one block per provider (for `snapshots plan`)."""
    lines = []
    for plan in plans.values():
        budget = (
            f"{plan.budget_per_hour:,.0f}/h"
            if plan.budget_per_hour != float("inf")
            else "unlimited"
        )
        verdict = (
            f"SHORT by {plan.shortfall_per_hour:,.0f}/h: intervals stretched x{plan.stretch:.2f}"
            if plan.stretch > 1
            else "fits"
        )
        lines.append(
            f"{plan.provider}: demand {plan.demand_per_hour:,.0f}/h of budget {budget}"
            f" ({plan.utilisation:.0%}) - {verdict}"
        )
        for d in plan.datasets:
            lines.append(
                f"  {d.dataset:<32} {d.keys:>6} keys  every {d.interval_seconds:>7,.0f}s"
                f"  x{d.requests_per_refresh:>5.1f} req  = {d.requests_per_hour:>10,.0f}/h"
            )
    return "\n".join(lines)
