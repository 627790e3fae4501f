"""A sliding-window rate limit, N requests per P seconds, as the fake upstreams enforce it."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WindowStatus:
    """Where a window stands: what the throttled answers and GitHub's rate headers report."""

    accepted: bool
    limit: int
    used: int
    reset_seconds: float

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def reset_whole_seconds(self) -> int:
        """Seconds until a slot frees, rounded up (at least 1 when the window is full)."""
        if self.used < self.limit:
            return math.ceil(self.reset_seconds)
        return max(1, math.ceil(self.reset_seconds))


@dataclass
class SlidingWindow:
    """Admits a request unless `requests` were already admitted in the last `period_seconds`.

    Only admitted requests enter the window, so a throttled answer never delays a later one.
    """

    requests: int
    period_seconds: float
    _admitted: deque[float] = field(default_factory=deque)

    def _prune(self, now: float) -> None:
        while self._admitted and self._admitted[0] <= now - self.period_seconds:
            self._admitted.popleft()

    def status(self, now: float, accepted: bool = True) -> WindowStatus:
        """The window as it stands at `now`, without admitting anything."""
        self._prune(now)
        oldest = self._admitted[0] if self._admitted else now
        return WindowStatus(
            accepted=accepted,
            limit=self.requests,
            used=len(self._admitted),
            reset_seconds=max(0.0, oldest + self.period_seconds - now),
        )

    def admit(self, now: float) -> WindowStatus:
        """Admit a request at `now` if there is room; the status says whether it was."""
        self._prune(now)
        if len(self._admitted) >= self.requests:
            return self.status(now, accepted=False)
        self._admitted.append(now)
        return self.status(now)
