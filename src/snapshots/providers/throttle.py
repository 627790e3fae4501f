"""Throttle signals: what an upstream answer says about slowing down, read by the provider kind
that knows its headers and applied by the budget, which knows none."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Throttle:
    """An answer's throttle signal.

    `throttled`: the request was refused for rate (retry it after the pause); otherwise the
    answer went through but the quota is spent and the next request must wait. `wait_seconds`:
    the wait the upstream announced, None when it gave none (the budget backs off then).
    """

    throttled: bool
    wait_seconds: float | None
    reason: str


ReadThrottle = Callable[[int, Mapping[str, str], float], Throttle | None]
"""(status, lower-cased headers, now as epoch seconds) -> the signal, None when there is none."""


def number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def retry_after(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = number(raw)
    if seconds is not None:
        return seconds
    try:
        return parsedate_to_datetime(raw).timestamp() - now_epoch
    except (TypeError, ValueError):
        return None


def standard(status: int, headers: Mapping[str, str], now_epoch: float) -> Throttle | None:
    """HTTP's own signal: 429 Too Many Requests, with Retry-After when the upstream sent one."""
    if status != 429:
        return None
    return Throttle(True, retry_after(headers, now_epoch), f"upstream answered {status}")
