"""The simulator's mutable world: request counters, latency, tokens and data mutations."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

DEFAULT_TOKENS = {"pagerduty": "sim-pagerduty-token"}


@dataclass
class SimulatorState:
    """Shared by every request the simulator serves; guarded by one lock."""

    latency_seconds: float = 0.0
    tokens: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TOKENS))
    requests: Counter[str] = field(default_factory=Counter)
    by_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    rotations: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, provider: str, status: int) -> None:
        with self._lock:
            self.requests[provider] += 1
            self.by_status[(provider, status)] += 1

    def rotate(self, object_id: str) -> int:
        """Shift an object's data one step (a roster change); returns how many shifts so far."""
        with self._lock:
            self.rotations[object_id] += 1
            return self.rotations[object_id]

    def rotation(self, object_id: str) -> int:
        with self._lock:
            return self.rotations[object_id]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.by_status.clear()
            self.rotations.clear()
            self.tokens = dict(DEFAULT_TOKENS)
            self.latency_seconds = 0.0

    def counters(self) -> dict[str, dict[str, object]]:
        with self._lock:
            out: dict[str, dict[str, object]] = {}
            for provider in sorted(set(self.tokens) | set(self.requests)):
                statuses = {
                    str(status): n
                    for (p, status), n in sorted(self.by_status.items())
                    if p == provider
                }
                out[provider] = {"requests": self.requests[provider], "by_status": statuses}
            return out
