"""Counts every upstream HTTP request at the client library's transport, per refresh and per provider."""

from __future__ import annotations

import threading
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx2


@dataclass
class RequestMeter:
    """Requests made on behalf of one refresh; set in a context variable around the fetch."""

    requests: int = 0


current_meter: ContextVar[RequestMeter | None] = ContextVar("current_meter", default=None)


@dataclass
class ProviderCounters:
    """Upstream requests by provider and status class, for status and metrics."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    by_status: Counter[tuple[str, str]] = field(default_factory=Counter)

    def record(self, provider: str, status: str) -> None:
        with self._lock:
            self.by_status[(provider, status)] += 1

    def total(self, provider: str) -> int:
        with self._lock:
            return sum(n for (p, _), n in self.by_status.items() if p == provider)


upstream_counters = ProviderCounters()


def _status_label(status_code: int | None) -> str:
    return "error" if status_code is None else f"{status_code // 100}xx"


class MeteredHttpx2Transport(httpx2.BaseTransport):
    """An httpx2 transport (used by the `pagerduty` library) that meters each request it sends.

    Metering at the transport, not around library calls, counts pagination pages and the
    library's own retries too.
    """

    def __init__(self, provider: str, inner: httpx2.BaseTransport | None = None) -> None:
        self._provider = provider
        self._inner = inner or httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        meter = current_meter.get()
        if meter is not None:
            meter.requests += 1
        try:
            response = self._inner.handle_request(request)
        except Exception:
            upstream_counters.record(self._provider, _status_label(None))
            raise
        upstream_counters.record(self._provider, _status_label(response.status_code))
        return response

    def close(self) -> None:
        self._inner.close()
