"""The shrink guard: a refresh that suddenly loses most of its items is held back, not served.

Reconcilers act on these lists; an upstream glitch that returns an empty on-call schedule must
not empty a Slack group. A shrink is accepted once it repeats identically `accept_after`
times in a row, or when an operator forces it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec


class ShrinkGuard(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When a new item count is suspicious compared with the served one; a dataset's
    `shrink_guard` table in jobs.toml."""

    enabled: bool = True
    empty_from: Annotated[int, msgspec.Meta(ge=0, le=10**6)] = (
        5  # a drop to zero from more than this
    )
    below: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.5  # a drop below this fraction ...
    min_items: Annotated[int, msgspec.Meta(ge=0, le=10**6)] = 20  # ... of more than this many items
    accept_after: Annotated[int, msgspec.Meta(ge=1, le=100)] = (
        3  # identical shrunken fetches, then accepted
    )

    def reason(self, previous: int | None, current: int) -> str | None:
        """Why `current` items should not replace `previous` ones, or None when it may."""
        if not self.enabled or previous is None or current >= previous:
            return None
        if current == 0 and previous > self.empty_from:
            return f"item count dropped from {previous} to 0"
        if previous > self.min_items and current < previous * self.below:
            return f"item count dropped from {previous} to {current} (below {self.below:.0%})"
        return None
