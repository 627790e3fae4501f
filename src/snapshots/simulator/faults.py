"""Queued faults: the next matching requests to a fake upstream fail in a chosen way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["error", "timeout", "malformed", "empty", "throttle", "truncated", "overstated"]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "error",
    "timeout",
    "malformed",
    "empty",
    "throttle",
    "truncated",
    "overstated",
)
# Faults that shape an otherwise normal answer: it still passes auth and the rate limit.
PAGING_FAULTS: frozenset[FaultKind] = frozenset({"truncated", "overstated"})


@dataclass
class Fault:
    """One queued fault, applied to the next `count` requests whose path+query contains `path`.

    - error: answer `status` with the provider's error body;
    - timeout: wait `seconds`, then answer normally (a client with a shorter timeout gives up);
    - malformed: 200 with a body that is not JSON;
    - empty: 200 with the endpoint's usual envelope around no items;
    - throttle: the provider's throttled answer, `retry_after` as the raw Retry-After header;
    - truncated: a page of a paged list comes back with no items while its pagination is the
      usual one (GitHub's Link, Jira's total or nextPageToken/isLast, PagerDuty's more/total);
    - overstated: a page's pagination announces more than there is: GitHub links one page past
      the last, Jira Server's total is one page larger, Jira Cloud says isLast=false with no
      nextPageToken, PagerDuty says more=true (and a total one page larger when asked).
    """

    kind: FaultKind
    count: int = 1
    path: str = ""
    status: int = 503
    retry_after: str | None = None
    seconds: float = 2.0

    def matches(self, target: str) -> bool:
        return self.count > 0 and self.path in target


@dataclass
class FaultQueue:
    """Faults for one provider, taken in the order they were queued."""

    pending: list[Fault]

    def take(self, target: str) -> Fault | None:
        """The first fault matching `target`, with one use spent; None when none matches."""
        for fault in self.pending:
            if fault.matches(target):
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
                return fault
        return None
