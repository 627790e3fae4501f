"""The worker side's live upstream parts: per provider a budget, the gate every request goes
through, and one shared client, built on first use. An `api` process builds none of them."""

from __future__ import annotations

import threading
from typing import Any

from snapshots.budget import Budget
from snapshots.coordination.fence import Fence
from snapshots.providers.transport import UpstreamGate
from snapshots.registry import RegisteredProvider, Registry


class Upstreams:
    """Budgets, gates and clients of every provider in the registry."""

    def __init__(self, registry: Registry, fence: Fence | None = None) -> None:
        self.registry = registry
        self.budgets: dict[str, Budget] = {}
        self.gates: dict[str, UpstreamGate] = {}
        for name, provider in registry.providers.items():
            budget = Budget(name, provider.budget_limit)
            self.budgets[name] = budget
            self.gates[name] = _gate(provider, budget, fence)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, provider: str) -> Any:
        """The shared client of `provider`, built once so connections and the budget are shared."""
        with self._lock:
            if provider not in self._clients:
                registered = self.registry.providers[provider]
                self._clients[provider] = registered.kind.make_client(
                    registered.settings, self.gates[provider]
                )
            return self._clients[provider]

    def close(self) -> None:
        for budget in self.budgets.values():
            budget.close()
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def _gate(provider: RegisteredProvider, budget: Budget, fence: Fence | None) -> UpstreamGate:
    settings = provider.settings
    return UpstreamGate(
        provider.name,
        budget,
        max_retries=settings.max_retries,
        max_throttle_wait=float(settings.max_throttle_wait),
        free_not_modified=provider.kind.free_not_modified,
        read_throttle=provider.kind.read_throttle,
        fence=fence,
    )
