"""The simulator's mutable world: counters, requests in flight, latency, tokens, rate limits,
faults, mutations, sizes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace

from snapshots.simulator.faults import Fault, FaultQueue
from snapshots.simulator.github_data import REPO_COUNT
from snapshots.simulator.jira_data import PROJECT_COUNT
from snapshots.simulator.pagerduty_data import SCHEDULE_COUNT
from snapshots.simulator.ratelimit import SlidingWindow, WindowStatus

PROVIDERS = ("pagerduty", "github", "jira")
DEFAULT_TOKENS = {
    "pagerduty": "sim-pagerduty-token",
    "github": "sim-github-token",
    "jira": "sim-jira-token",
}
# With no limit set, usage is still reported against GitHub's default: 5000 requests an hour.
DEFAULT_USAGE_REQUESTS = 5000
DEFAULT_USAGE_PERIOD_SECONDS = 3600.0


@dataclass(frozen=True)
class Sizes:
    """How many objects of each sized kind exist: PSCH001.., PRJ1.., acme/repo-01.."""

    schedules: int = SCHEDULE_COUNT
    projects: int = PROJECT_COUNT
    repos: int = REPO_COUNT


@dataclass(frozen=True)
class InFlight:
    """A fake upstream request received and not answered yet."""

    provider: str
    instance: str  # the gateway instance that sent it ("" if untagged)
    target: str  # path and query
    since: float  # time.monotonic() when it arrived


def _usage_windows() -> dict[str, SlidingWindow]:
    return {
        p: SlidingWindow(DEFAULT_USAGE_REQUESTS, DEFAULT_USAGE_PERIOD_SECONDS) for p in PROVIDERS
    }


@dataclass
class SimulatorState:
    """Shared by every request the simulator serves; guarded by one lock."""

    latency_seconds: float = 0.0
    tokens: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TOKENS))
    # Further accounts of a provider: token -> account name (the main token's account is "").
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)
    by_account: Counter[tuple[str, str]] = field(default_factory=Counter)
    jira_deployment: str = "Server"
    sizes: Sizes = field(default_factory=Sizes)
    requests: Counter[str] = field(default_factory=Counter)
    by_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    by_instance: Counter[tuple[str, str]] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    mutations: Counter[tuple[str, str]] = field(default_factory=Counter)
    limits: dict[str, SlidingWindow] = field(default_factory=dict)
    usage: dict[str, SlidingWindow] = field(default_factory=_usage_windows)
    faults: dict[str, FaultQueue] = field(default_factory=dict)
    generation: int = 0  # bumped by reset; requests from an older generation are not counted
    _in_flight: dict[int, InFlight] = field(default_factory=dict)
    _next_ticket: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arrived(self, provider: str, instance: str, target: str) -> int:
        """Note a request received (before latency and faults); returns the ticket `answered`
        takes. Reset leaves these alone: they are connections really open."""
        with self._lock:
            self._next_ticket += 1
            self._in_flight[self._next_ticket] = InFlight(
                provider, instance, target, time.monotonic()
            )
            return self._next_ticket

    def answered(self, ticket: int) -> None:
        with self._lock:
            self._in_flight.pop(ticket, None)

    def in_flight(self) -> list[dict[str, object]]:
        """Requests received and not answered yet, oldest first."""
        with self._lock:
            now = time.monotonic()
            return [
                {
                    "provider": r.provider,
                    "instance": r.instance,
                    "path": r.target,
                    "seconds": round(now - r.since, 3),
                }
                for r in sorted(self._in_flight.values(), key=lambda r: r.since)
            ]

    def count(self, provider: str, status: int, instance: str = "") -> None:
        """Count one answer of a fake upstream, whatever its status, and which gateway
        instance asked (the `snapshots-instance/NAME` tag of its User-Agent, if any)."""
        with self._lock:
            self.requests[provider] += 1
            self.by_status[(provider, status)] += 1
            self.by_instance[(provider, instance)] += 1

    def count_account(self, provider: str, account: str) -> None:
        """Count one authorized request against the account whose token it carried."""
        with self._lock:
            self.by_account[(provider, account)] += 1

    def account_tokens(self, provider: str) -> list[tuple[str, str]]:
        """(account, token) pairs a provider accepts: its main token first."""
        with self._lock:
            extra = [(name, token) for token, name in self.accounts.get(provider, {}).items()]
            return [("", self.tokens[provider]), *extra]

    def count_violation(self, provider: str) -> None:
        with self._lock:
            self.violations[provider] += 1

    def set_limit(self, provider: str, requests: int, period_seconds: float) -> None:
        with self._lock:
            self.limits[provider] = SlidingWindow(requests, period_seconds)

    def clear_limit(self, provider: str) -> None:
        with self._lock:
            self.limits.pop(provider, None)

    def admit(self, provider: str) -> WindowStatus:
        """Admit one request under the provider's limit; with no limit set it is always admitted."""
        with self._lock:
            now = time.monotonic()
            limit = self.limits.get(provider)
            if limit is not None:
                return limit.admit(now)
            return replace(self.usage[provider].admit(now), accepted=True)

    def window(self, provider: str) -> WindowStatus:
        """The provider's window as it stands, without admitting a request."""
        with self._lock:
            window = self.limits.get(provider) or self.usage[provider]
            return window.status(time.monotonic())

    def add_fault(self, provider: str, fault: Fault) -> None:
        with self._lock:
            self.faults.setdefault(provider, FaultQueue([])).pending.append(fault)

    def clear_faults(self, provider: str) -> None:
        with self._lock:
            self.faults.pop(provider, None)

    def take_fault(self, provider: str, target: str) -> Fault | None:
        """The next queued fault for a request to `target` (path and query), if any."""
        with self._lock:
            queue = self.faults.get(provider)
            return queue.take(target) if queue else None

    def mutate(self, provider: str, object_id: str) -> int:
        """Change an object's data one step; returns how many steps so far."""
        with self._lock:
            self.mutations[(provider, object_id)] += 1
            return self.mutations[(provider, object_id)]

    def mutation(self, provider: str, object_id: str) -> int:
        with self._lock:
            return self.mutations[(provider, object_id)]

    def reset(self) -> None:
        """Back to defaults: counters, tokens, latency, limits, faults, mutations, deployment,
        sizes."""
        with self._lock:
            self.requests.clear()
            self.by_status.clear()
            self.by_instance.clear()
            self.by_account.clear()
            self.accounts.clear()
            self.violations.clear()
            self.mutations.clear()
            self.limits.clear()
            self.faults.clear()
            self.usage = _usage_windows()
            self.tokens = dict(DEFAULT_TOKENS)
            self.latency_seconds = 0.0
            self.jira_deployment = "Server"
            self.sizes = Sizes()
            self.generation += 1

    def counters(self) -> dict[str, dict[str, object]]:
        """Per provider: answers given, by status and by gateway instance, and rate-limit violations."""
        with self._lock:
            out: dict[str, dict[str, object]] = {}
            for provider in PROVIDERS:
                statuses = {
                    str(status): n
                    for (p, status), n in sorted(self.by_status.items())
                    if p == provider
                }
                instances = {
                    name: n for (p, name), n in sorted(self.by_instance.items()) if p == provider
                }
                accounts = {
                    name or "main": n
                    for (p, name), n in sorted(self.by_account.items())
                    if p == provider
                }
                out[provider] = {
                    "requests": self.requests[provider],
                    "by_status": statuses,
                    "by_instance": instances,
                    "by_account": accounts,
                    "violations": self.violations[provider],
                }
            return out
