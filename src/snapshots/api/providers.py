"""Providers with their budget state and plan, as the active worker last published them."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency

from snapshots.api.schemas import ERROR_RESPONSES, ProviderBody
from snapshots.published import PublishedBudgets
from snapshots.registry import Registry


@get("/api/v1/providers", tags=["providers"], responses=ERROR_RESPONSES, opt={"role": "reader"})
async def list_providers(
    registry: NamedDependency[Registry], budgets: NamedDependency[PublishedBudgets]
) -> list[ProviderBody]:
    """Every provider: budget (tokens left, waiters, pause), plan (demand vs budget) and
    upstream answers, as published by the active worker (`published` says who and when;
    null before any worker published)."""
    views = await budgets.views()
    bodies = []
    for name, provider in sorted(registry.providers.items()):
        view = views.get(name)
        bodies.append(
            ProviderBody(
                provider=name,
                base_url=provider.settings.base_url or "",
                enabled=provider.disabled_reason is None,
                disabled_reason=provider.disabled_reason,
                datasets=sorted(
                    d.name for d in registry.datasets.values() if d.provider is provider
                ),
                budget=view.state.budget if view else None,
                plan=view.state.plan if view else None,
                upstream_requests=view.state.upstream_requests if view else {},
                published=view.published if view else None,
            )
        )
    return bodies
