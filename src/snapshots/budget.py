"""Per-provider rate budget: N requests per period, interactive work first, paused by throttle signals.

The bucket is a sliding window: a token comes back exactly one period after it was spent, so no
window of that length ever holds more than N requests (a refilling bucket with capacity N can
let 2N through one window and trip a fixed-window upstream limit).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from enum import IntEnum

from snapshots.config_types import BudgetLimit
from snapshots.errors import UpstreamError
from snapshots.providers.throttle import Throttle

SAFETY_MARGIN = 0.02
"""Tokens return 2% of a period late, so network jitter cannot make two windows overlap upstream."""

DEFAULT_THROTTLE_PAUSE = 1.0
"""Pause after a throttle answer that gives no usable reset time (doubles while they repeat)."""

MAX_THROTTLE_PAUSE = 300.0


class Priority(IntEnum):
    """Who is waiting: readers and operators before the scheduler."""

    INTERACTIVE = 0
    SCHEDULED = 1


current_priority: ContextVar[Priority] = ContextVar("current_priority", default=Priority.SCHEDULED)


class BudgetExhausted(UpstreamError):
    """A request could not get a token before its deadline."""

    code = "budget_exhausted"


@dataclass(frozen=True)
class BudgetState:
    """What the budget looks like now, for status and metrics."""

    provider: str
    limit: int | None
    period_seconds: float | None
    used_in_period: int
    tokens_left: int | None
    waiting: Mapping[str, int]
    paused_for_seconds: float
    pause_reason: str | None
    granted: int
    wait_seconds: Mapping[str, float]


class Budget:
    """The token bucket every upstream request of one provider draws from (thread-safe)."""

    def __init__(
        self,
        provider: str,
        limit: BudgetLimit | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.limit = limit
        self._clock = clock
        self._cond = threading.Condition()
        self._spent: deque[float] = deque()
        self._queue: list[tuple[int, int]] = []
        self._tickets = itertools.count()
        self._paused_until = 0.0
        self._pause_reason: str | None = None
        self._throttle_streak = 0
        self._granted = 0
        self._closed = False
        self._wait_seconds: dict[str, float] = {}

    @property
    def _window(self) -> float:
        assert self.limit is not None
        return self.limit.period_seconds * (1 + SAFETY_MARGIN)

    def _prune(self, now: float) -> None:
        if self.limit is None:
            return
        while self._spent and self._spent[0] <= now - self._window:
            self._spent.popleft()

    def _wait_needed(self, now: float) -> float:
        """Seconds until a token could be granted (0 when one is free now)."""
        wait = max(0.0, self._paused_until - now)
        if self.limit is not None:
            self._prune(now)
            if len(self._spent) >= self.limit.requests:
                wait = max(wait, self._spent[0] + self._window - now)
        return wait

    def acquire(self, priority: Priority, deadline: float | None = None) -> float:
        """Take one token, waiting behind higher-priority and earlier waiters; returns seconds waited.

        Raises BudgetExhausted when `deadline` (a `time.monotonic()` value) passes first.
        """
        ticket = (int(priority), next(self._tickets))
        start = self._clock()
        with self._cond:
            heapq.heappush(self._queue, ticket)
            try:
                while True:
                    if self._closed:
                        raise BudgetExhausted(
                            f"{self.provider} budget closed: the service is stopping"
                        )
                    now = self._clock()
                    wait = self._wait_needed(now)
                    if self._queue[0] == ticket and wait <= 0:
                        heapq.heappop(self._queue)
                        if self.limit is not None:
                            self._spent.append(now)
                        self._granted += 1
                        waited = now - start
                        name = priority.name.lower()
                        self._wait_seconds[name] = self._wait_seconds.get(name, 0.0) + waited
                        self._cond.notify_all()
                        return waited
                    if deadline is not None and now >= deadline:
                        raise BudgetExhausted(
                            f"{self.provider} budget ({self.limit}) had no token within the wait; "
                            "the request was not sent"
                        )
                    # The head sleeps until its token frees up; the others until someone notifies.
                    timeout = wait if self._queue[0] == ticket else None
                    if deadline is not None:
                        timeout = (
                            deadline - now if timeout is None else min(timeout, deadline - now)
                        )
                    self._cond.wait(timeout if timeout is None else max(timeout, 0.001))
            finally:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                    heapq.heapify(self._queue)
                    self._cond.notify_all()

    def refund(self) -> None:
        """Give back the most recent token (the upstream did not count that request)."""
        with self._cond:
            if self._spent:
                self._spent.pop()
                self._cond.notify_all()

    def close(self) -> None:
        """Wake every waiter with BudgetExhausted, so no fetch thread outlives the service."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def pause(self, seconds: float, reason: str) -> None:
        """Hold every request of this provider for `seconds` (an upstream asked us to slow down)."""
        seconds = min(max(seconds, 0.0), MAX_THROTTLE_PAUSE)
        with self._cond:
            until = self._clock() + seconds
            if until > self._paused_until:
                self._paused_until = until
                self._pause_reason = reason
            self._cond.notify_all()

    def observe(self, signal: Throttle | None) -> float | None:
        """Apply an upstream answer's throttle signal (read by its provider kind): pause for the
        announced wait; return the pause when the request itself was refused, else None."""
        if signal is None or not signal.throttled:
            with self._cond:
                self._throttle_streak = 0
            if signal is not None and signal.wait_seconds is not None:
                # The quota is spent: wait for its reset before asking again.
                self.pause(signal.wait_seconds, signal.reason)
            return None
        announced = signal.wait_seconds
        with self._cond:
            self._throttle_streak += 1
            streak = self._throttle_streak
        if announced is None or announced <= 0:
            # No usable reset (absent, 0 or in the past): back off instead of retrying hot.
            announced = DEFAULT_THROTTLE_PAUSE * 2 ** min(streak - 1, 8)
        self.pause(announced, signal.reason)
        return min(announced, MAX_THROTTLE_PAUSE)

    def state(self) -> BudgetState:
        with self._cond:
            now = self._clock()
            self._prune(now)
            waiting = Counter(Priority(p).name.lower() for p, _ in self._queue)
            used = len(self._spent)
            paused = max(0.0, self._paused_until - now)
            return BudgetState(
                provider=self.provider,
                limit=self.limit.requests if self.limit else None,
                period_seconds=self.limit.period_seconds if self.limit else None,
                used_in_period=used,
                tokens_left=max(0, self.limit.requests - used) if self.limit else None,
                waiting=dict(waiting),
                paused_for_seconds=round(paused, 3),
                pause_reason=self._pause_reason if paused > 0 else None,
                granted=self._granted,
                wait_seconds=dict(self._wait_seconds),
            )
