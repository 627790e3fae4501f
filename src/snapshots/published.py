"""One truth for budgets: the active worker publishes each provider's budget, plan and
upstream answers to PostgreSQL at every leader check; every replica (API, standby worker,
the active worker itself) shows that record, with its age, never its own idle budget."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from snapshots.api.schemas import ProviderState
from snapshots.budget import BudgetState
from snapshots.deadline import within
from snapshots.logs import get_logger
from snapshots.planner import ProviderPlan
from snapshots.store.errors import STORE_UNANSWERED
from snapshots.store.published import ProviderStates
from snapshots.upstreams import Upstreams
from snapshots_client.wire import BudgetBody, DemandBody, PlanBody, PublishedBy

log = get_logger(__name__)

READ_EVERY_SECONDS = 1.0  # replicas re-read the record at most this often
READ_WAIT_SECONDS = 2.0


def budget_body(budget: BudgetState) -> BudgetBody:
    return BudgetBody(
        limit=budget.limit,
        period_seconds=budget.period_seconds,
        used_in_period=budget.used_in_period,
        tokens_left=budget.tokens_left,
        waiting=dict(budget.waiting),
        paused_for_seconds=budget.paused_for_seconds,
        pause_reason=budget.pause_reason,
        granted=budget.granted,
        wait_seconds=dict(budget.wait_seconds),
    )


def plan_body(plan: ProviderPlan | None) -> PlanBody | None:
    if plan is None:
        return None
    return PlanBody(
        demand_per_hour=round(plan.demand_per_hour, 1),
        budget_per_hour=round(plan.budget_per_hour, 1),
        utilisation=round(plan.utilisation, 3),
        stretch=round(plan.stretch, 3),
        shortfall_per_hour=round(plan.shortfall_per_hour, 1),
        datasets=[
            DemandBody(d.dataset, d.keys, d.requests_per_refresh, round(d.requests_per_hour, 1))
            for d in plan.datasets
        ],
    )


def current_states(
    upstreams: Upstreams, plans: Mapping[str, ProviderPlan]
) -> dict[str, dict[str, Any]]:
    """The worker's own figures per provider, as published (JSON-ready)."""
    return {
        name: msgspec.to_builtins(
            ProviderState(
                budget_body(upstreams.budgets[name].state()),
                plan_body(plans.get(name)),
                upstreams.gates[name].answers(),
            )
        )
        for name in upstreams.budgets
    }


@dataclass(frozen=True)
class ProviderView:
    """A provider's published state as a replica shows it."""

    state: ProviderState
    published: PublishedBy


LiveStates = Callable[[], tuple[str, dict[str, dict[str, Any]]] | None]
"""This process's own (instance, states) while it is the active worker, else None."""


class PublishedBudgets:
    """The view of the published record, re-read at most once a second. In the active worker
    itself, its live figures (what it would publish now) instead."""

    def __init__(self, states: ProviderStates, live: LiveStates | None = None) -> None:
        self._states = states
        self._live = live
        self._views: dict[str, ProviderView] = {}
        self._read_at = float("-inf")

    async def views(self) -> dict[str, ProviderView]:
        """Per provider; empty before any worker published (or while the database is down,
        the last views read)."""
        live = self._live() if self._live is not None else None
        if live is not None:
            instance, states = live
            now = datetime.now(UTC)
            return {
                name: ProviderView(
                    msgspec.convert(state, ProviderState), PublishedBy(instance, now, 0.0)
                )
                for name, state in states.items()
            }
        if time.monotonic() - self._read_at < READ_EVERY_SECONDS:
            return self._views
        try:
            rows = await within(self._states.read(), READ_WAIT_SECONDS)
        except STORE_UNANSWERED as exc:
            log.warning("budgets.read_failed", error_type=type(exc).__name__)
            return self._views
        views = {}
        for name, row in rows.items():
            try:
                state = msgspec.convert(row.state, ProviderState)
            except msgspec.ValidationError:
                continue  # published by another version of the service
            views[name] = ProviderView(
                state, PublishedBy(row.instance, row.published_at, round(row.age_seconds, 3))
            )
        self._views, self._read_at = views, time.monotonic()
        return views
