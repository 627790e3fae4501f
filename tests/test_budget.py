"""The per-provider budget: never more than N per window, interactive first, throttle signals obeyed."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from snapshots.budget import DEFAULT_THROTTLE_PAUSE, Budget, BudgetExhausted, Priority
from snapshots.config import BudgetLimit
from snapshots.providers import throttle
from snapshots.providers.github import client as github_client
from snapshots.providers.pagerduty import client as pagerduty_client

READERS = {
    "jira": throttle.standard,
    "github": github_client.read_throttle,
    "pagerduty": pagerduty_client.read_throttle,
}


def _answer(budget: Budget, status: int, headers: dict[str, str]) -> float | None:
    """An upstream answer as the gate hands it to the budget: read by the provider's kind."""
    return budget.observe(READERS[budget.provider](status, headers, time.time()))


def _grant_times(
    budget: Budget, count: int, priority: Priority = Priority.SCHEDULED
) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        budget.acquire(priority)
        with lock:
            times.append(time.monotonic())

    threads = [threading.Thread(target=take) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(times)


def test_no_window_of_one_period_holds_more_than_the_limit() -> None:
    budget = Budget("jira", BudgetLimit(3, 0.3))

    times = _grant_times(budget, 10)

    assert len(times) == 10
    for i in range(len(times) - 3):
        # the 4th grant after any grant comes at least one full period later
        assert times[i + 3] - times[i] >= 0.3


def test_interactive_waiters_are_served_before_scheduled_ones() -> None:
    budget = Budget("jira", BudgetLimit(1, 0.3))
    budget.acquire(Priority.SCHEDULED)  # the bucket is now empty for 0.3 s
    order: list[str] = []

    def take(priority: Priority) -> None:
        budget.acquire(priority)
        order.append(priority.name)

    scheduled = [threading.Thread(target=take, args=(Priority.SCHEDULED,)) for _ in range(2)]
    for thread in scheduled:
        thread.start()
    time.sleep(0.05)  # the scheduled waiters queue first
    assert budget.state().waiting == {"scheduled": 2}
    interactive = threading.Thread(target=take, args=(Priority.INTERACTIVE,))
    interactive.start()
    for thread in [*scheduled, interactive]:
        thread.join(30)

    assert order == ["INTERACTIVE", "SCHEDULED", "SCHEDULED"]


def test_a_waiter_past_its_deadline_gets_no_token_and_sends_nothing() -> None:
    budget = Budget("jira", BudgetLimit(1, 60.0))
    budget.acquire(Priority.SCHEDULED)

    with pytest.raises(BudgetExhausted, match="not sent"):
        budget.acquire(Priority.INTERACTIVE, deadline=time.monotonic() + 0.1)

    state = budget.state()
    assert state.granted == 1
    assert state.waiting == {}


def test_throttle_answer_pauses_the_whole_provider_until_retry_after() -> None:
    budget = Budget("jira", None)

    pause = _answer(budget, 429, {"retry-after": "0.4"})
    started = time.monotonic()
    budget.acquire(Priority.INTERACTIVE)

    assert pause == pytest.approx(0.4)
    assert time.monotonic() - started >= 0.35
    assert budget.state().granted == 1


@pytest.mark.parametrize("retry_after", ["0", "-5", "soon"])
def test_retry_after_zero_negative_or_garbage_backs_off_instead_of_spinning(
    retry_after: str,
) -> None:
    budget = Budget("jira", None)

    first = _answer(budget, 429, {"retry-after": retry_after})
    second = _answer(budget, 429, {"retry-after": retry_after})

    assert first == DEFAULT_THROTTLE_PAUSE
    assert second == 2 * DEFAULT_THROTTLE_PAUSE  # repeated throttles back off further
    assert budget.state().paused_for_seconds > 0


def test_retry_after_as_http_date_is_understood() -> None:
    budget = Budget("jira", None)
    when = datetime.now(UTC) + timedelta(seconds=30)

    pause = _answer(budget, 503, {"retry-after": format_datetime(when, usegmt=True)})
    throttled = _answer(budget, 429, {"retry-after": format_datetime(when, usegmt=True)})

    assert pause is None  # a 503 is not a throttle; the gate retries it with backoff
    assert throttled == pytest.approx(30, abs=1.5)


def test_github_quota_spent_pauses_until_its_reset_even_on_success() -> None:
    budget = Budget("github", None)
    reset = int(time.time()) + 20

    on_success = _answer(
        budget, 200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    )
    state = budget.state()
    throttled = _answer(
        budget, 403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    )

    assert on_success is None
    assert 18 <= state.paused_for_seconds <= 22
    assert state.pause_reason == "X-RateLimit-Remaining: 0"
    assert throttled is not None
    assert 18 <= throttled <= 22


def test_github_403_with_quota_left_is_not_a_throttle() -> None:
    budget = Budget("github", None)

    assert _answer(budget, 403, {"x-ratelimit-remaining": "4000"}) is None
    assert budget.state().paused_for_seconds == 0


def test_pagerduty_ratelimit_reset_sets_the_pause() -> None:
    budget = Budget("pagerduty", None)

    assert _answer(budget, 429, {"ratelimit-reset": "7"}) == 7


def test_state_reports_tokens_left_and_use_in_the_period() -> None:
    budget = Budget("pagerduty", BudgetLimit(5, 60.0))
    for _ in range(2):
        budget.acquire(Priority.SCHEDULED)

    state = budget.state()

    assert (state.limit, state.used_in_period, state.tokens_left) == (5, 2, 3)
    assert state.period_seconds == 60.0
