"""The one door to every upstream: budget token, retries, throttle pauses and metering per request.

It sits at the HTTP transport of each client library (an httpx / httpx2 transport, a requests
adapter), so pagination pages and library-internal retries each pass through it too.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
import httpx2
import requests
import requests.adapters
import requests.structures

from snapshots.budget import Budget, current_priority
from snapshots.coordination.fence import Fence
from snapshots.instance import user_agent_tag
from snapshots.logs import get_logger
from snapshots.providers.throttle import ReadThrottle, standard

log = get_logger(__name__)

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 10.0


@dataclass
class RequestMeter:
    """Requests made on behalf of one refresh; set in a context variable around the fetch."""

    requests: int = 0


current_meter: ContextVar[RequestMeter | None] = ContextVar("current_meter", default=None)


class _Response(Protocol):
    """What httpx, httpx2 and requests responses have in common."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Any: ...

    def close(self) -> None: ...


R = TypeVar("R", bound=_Response)


def _status_label(status: int) -> str:
    return str(status) if status in (304, 401, 403, 404, 429) else f"{status // 100}xx"


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter: up to 0.5 s, 1 s, 2 s, ... capped at 10 s."""
    return random.uniform(0.5, 1.0) * min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0**attempt)


@dataclass
class UpstreamGate:
    """Sends one logical request: a token per attempt, bounded retries, throttle pauses honoured.

    Transient failures (connection errors, timeouts, 5xx) are retried `max_retries` times with
    jittered exponential backoff; throttle answers (as the provider kind reads them: 429, a 403 with no quota left) pause
    the provider's budget and are retried after the pause, at most `max_retries` times and only
    when the pause is shorter than `max_throttle_wait`; other 4xx are returned at once.
    """

    provider: str
    budget: Budget
    max_retries: int = 3
    max_throttle_wait: float = 60.0
    acquire_timeout: float | None = None
    free_not_modified: bool = False  # the upstream does not count 304s: give the token back
    sleep: Callable[[float], None] = time.sleep
    fence: Fence | None = None  # set on a worker: a deposed leader makes no upstream call
    read_throttle: ReadThrottle = standard  # the provider kind's reading of throttle headers
    _answers: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answers(self) -> dict[str, int]:
        """Upstream answers so far by status (`2xx`, `404`, `429`, `error`...)."""
        with self._lock:
            return dict(sorted(self._answers.items()))

    def _record(self, status: str) -> None:
        with self._lock:
            self._answers[status] += 1

    def send(self, attempt_fn: Callable[[], R], transient: tuple[type[BaseException], ...]) -> R:
        failures = throttles = 0
        while True:
            deadline = (
                None if self.acquire_timeout is None else time.monotonic() + self.acquire_timeout
            )
            if self.fence is not None:
                self.fence.check()
            self.budget.acquire(current_priority.get(), deadline)
            if self.fence is not None:
                self.fence.check()  # the wait for a token may have outlasted the lease
            meter = current_meter.get()
            if meter is not None:
                meter.requests += 1
            try:
                response = attempt_fn()
            except transient as exc:
                self._record("error")
                if failures >= self.max_retries:
                    raise
                failures += 1
                log.info(
                    "upstream.retry",
                    provider=self.provider,
                    reason=type(exc).__name__,
                    attempt=failures,
                )
                self.sleep(backoff_seconds(failures))
                continue
            status = response.status_code
            self._record(_status_label(status))
            if status == 304 and self.free_not_modified:
                self.budget.refund()
            signal = self.read_throttle(status, _lower(response.headers), time.time())
            pause = self.budget.observe(signal)
            if pause is not None:
                if throttles >= self.max_retries or pause > self.max_throttle_wait:
                    return response
                throttles += 1
                log.info(
                    "upstream.throttled",
                    provider=self.provider,
                    status=status,
                    pause_seconds=round(pause, 3),
                )
                response.close()
                continue  # the next acquire waits out the pause
            if status >= 500 and failures < self.max_retries:
                failures += 1
                log.info("upstream.retry", provider=self.provider, reason=status, attempt=failures)
                response.close()
                self.sleep(backoff_seconds(failures))
                continue
            return response


@functools.cache
def _tag() -> str:
    return user_agent_tag()


def tagged(user_agent: str | None) -> str:
    """The library's User-Agent with this gateway instance's tag, so upstreams (and the
    simulator) can tell which replica called."""
    tag = _tag()
    if not user_agent:
        return tag
    return user_agent if user_agent.endswith(tag) else f"{user_agent} {tag}"


def _lower(headers: Any) -> Mapping[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


class GatedHttpx2Transport(httpx2.BaseTransport):
    """httpx2 transport (for client libraries built on httpx2) that sends through the gate."""

    def __init__(self, gate: UpstreamGate, inner: httpx2.BaseTransport | None = None) -> None:
        self._gate = gate
        self._inner = inner or httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["User-Agent"] = tagged(request.headers.get("User-Agent"))
        return self._gate.send(
            lambda: self._inner.handle_request(request), (httpx2.TransportError,)
        )

    def close(self) -> None:
        self._inner.close()


class GatedHttpxTransport(httpx.BaseTransport):
    """httpx transport (the generic `http` provider) that sends through the gate."""

    def __init__(self, gate: UpstreamGate, inner: httpx.BaseTransport | None = None) -> None:
        self._gate = gate
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["User-Agent"] = tagged(request.headers.get("User-Agent"))
        return self._gate.send(lambda: self._inner.handle_request(request), (httpx.TransportError,))

    def close(self) -> None:
        self._inner.close()


@dataclass
class _Validated:
    etag: str
    status: int
    headers: dict[str, str]
    content: bytes


class ConditionalCache:
    """The last ETag and body of each GET URL, so every request can be a revalidation.

    The upstream answers an unchanged resource with 304 (which some upstreams do not count against
    its quota); the 304 is replayed to the client library as the 200 it had, so libraries
    that know nothing of conditional requests (their paginated lists) still work.
    Bounded in bytes, least recently used first out.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._entries: OrderedDict[str, _Validated] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def prepare(self, request: requests.PreparedRequest) -> None:
        if request.method != "GET" or request.url is None or "If-None-Match" in request.headers:
            return
        with self._lock:
            entry = self._entries.get(request.url)
        if entry is not None:
            request.headers["If-None-Match"] = entry.etag

    def complete(
        self, request: requests.PreparedRequest, response: requests.Response
    ) -> requests.Response:
        if request.method != "GET" or request.url is None:
            return response
        url = request.url
        if response.status_code == 304:
            with self._lock:
                entry = self._entries.get(url)
                if entry is not None:
                    self._entries.move_to_end(url)
            if entry is None:
                return response
            replay = requests.Response()
            replay.status_code = entry.status
            replay.headers = requests.structures.CaseInsensitiveDict(entry.headers)
            replay.headers.update(
                {k: v for k, v in response.headers.items() if k.lower().startswith("x-ratelimit")}
            )
            replay._content = entry.content
            replay.url, replay.request, replay.reason = url, request, "OK"
            replay.encoding = response.encoding
            response.close()
            return replay
        etag = response.headers.get("ETag")
        if response.status_code == 200 and etag:
            entry = _Validated(etag, 200, dict(response.headers), response.content)
            with self._lock:
                old = self._entries.pop(url, None)
                self._bytes += len(entry.content) - (len(old.content) if old else 0)
                self._entries[url] = entry
                while self._bytes > self._max_bytes and self._entries:
                    _, evicted = self._entries.popitem(last=False)
                    self._bytes -= len(evicted.content)
        return response


class GatedRequestsAdapter(requests.adapters.HTTPAdapter):
    """requests adapter (for client libraries built on requests) that sends through the gate, with the provider's timeout,
    and revalidates with ETags when the provider supports conditional requests."""

    def __init__(self, gate: UpstreamGate, timeout: float, conditional: bool = False) -> None:
        super().__init__(max_retries=0)  # the gate retries, so urllib3 must not
        self._gate = gate
        self._timeout = timeout
        self._cache = ConditionalCache() if conditional else None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        request.headers["User-Agent"] = tagged(request.headers.get("User-Agent"))
        if self._cache is not None:
            self._cache.prepare(request)
        response = self._gate.send(
            lambda: super(GatedRequestsAdapter, self).send(request, **kwargs),
            (requests.ConnectionError, requests.Timeout),
        )
        return self._cache.complete(request, response) if self._cache is not None else response
