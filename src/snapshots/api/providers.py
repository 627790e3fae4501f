"""Providers with their budget state and plan, for operators."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State

from snapshots.api.common import runtime_of
from snapshots.api.schemas import ERROR_RESPONSES, BudgetBody, DemandBody, PlanBody, ProviderBody
from snapshots.budget import BudgetState


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


@get(
    "/api/v1/providers",
    tags=["providers"],
    sync_to_thread=False,
    responses=ERROR_RESPONSES,
    opt={"role": "reader"},
)
def list_providers(state: State) -> list[ProviderBody]:
    """Every provider: budget (tokens left, waiters, pause), plan (demand vs budget), answers."""
    runtime = runtime_of(state)
    registry = runtime.registry
    plans = runtime.scheduler.plan if runtime.scheduler is not None else {}
    bodies = []
    for name, provider in sorted(registry.providers.items()):
        budget = provider.budget.state()
        plan = plans.get(name)
        bodies.append(
            ProviderBody(
                provider=name,
                base_url=provider.settings.base_url or "",
                enabled=provider.disabled_reason is None,
                disabled_reason=provider.disabled_reason,
                datasets=sorted(
                    d.name for d in registry.datasets.values() if d.provider is provider
                ),
                budget=budget_body(budget),
                plan=None
                if plan is None
                else PlanBody(
                    demand_per_hour=round(plan.demand_per_hour, 1),
                    budget_per_hour=round(plan.budget_per_hour, 1),
                    utilisation=round(plan.utilisation, 3),
                    stretch=round(plan.stretch, 3),
                    shortfall_per_hour=round(plan.shortfall_per_hour, 1),
                    datasets=[
                        DemandBody(
                            d.dataset, d.keys, d.requests_per_refresh, round(d.requests_per_hour, 1)
                        )
                        for d in plan.datasets
                    ],
                ),
                upstream_requests=provider.gate.answers(),
            )
        )
    return bodies
